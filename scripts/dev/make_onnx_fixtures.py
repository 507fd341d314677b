#!/usr/bin/python3
"""Dev-only: writes the small ONNX fixtures in test/fixtures/onnx/ with the official `onnx` package.

Run with the Debian python (it has python3-onnx):   /usr/bin/python3 scripts/dev/make_onnx_fixtures.py

Each model gets a JSON sidecar (<name>.weights.json) listing every weight the way the official package
sees it: graph path, name, dims, data_type, where it is stored (initializer / constant / external) and its
values as float64. The TypeScript reader (src/io/onnx) is checked against these sidecars, so the expected
values come from an independent implementation (onnx.numpy_helper), not from our own decoder.

Fixtures:
  mlp.onnx        Gather embedding + MatMul + Add + Relu + Gemm(transB=1) + LayerNormalization, and an fp16
                  initializer stored in int32_data feeding a Cast; initializers in raw_data and float_data.
  constants.onnx  paddle2onnx style: every weight is the value attribute of a Constant node
                  (Conv + BatchNormalization + MatMul).
  ifsub.onnx      an If whose then-branch holds an initializer and whose else-branch holds a Constant node,
                  with a nested If inside the then-branch.
  external.onnx   the MLP with its weights in external.onnx_data (data_location = EXTERNAL).
  sparse.onnx     MatMul + Add whose weights are sparse initializers (linear and coordinate indices).
  blind.onnx      MatMul + Relu + MatMul, then a Softmax over an axis of length 1: an output that is 1
                  for every model (the measure a planner must refuse), and a second output 'features'
                  (the hidden layer) that does see the weights.
"""
import json
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'test', 'fixtures', 'onnx')
OPSET = [helper.make_opsetid('', 17)]
rng = np.random.default_rng(20261122)


def rand(*shape):
    return rng.standard_normal(shape).astype(np.float32)


def collect(graph, path, out, model_dir):
    """Every weight of `graph` and its subgraphs, in graph order: initializers, then nodes."""
    for t in graph.initializer:
        out.append(describe(t, path, 'initializer', model_dir))
    for sp in graph.sparse_initializer:
        out.append(describe_sparse(sp, path))
    for node in graph.node:
        for a in node.attribute:
            if node.op_type == 'Constant' and a.name == 'value' and a.type == onnx.AttributeProto.TENSOR:
                out.append(describe(a.t, path, 'constant', model_dir, node.output[0]))
            if a.type == onnx.AttributeProto.GRAPH:
                collect(a.g, path + [f'{node.name}.{a.name}'], out, model_dir)
    return out


def describe(t, path, kind, model_dir, name=None):
    external = t.data_location == TensorProto.EXTERNAL
    if external:
        storage = 'external'
    elif t.raw_data:
        storage = 'raw_data'
    elif len(t.float_data):
        storage = 'float_data'
    elif len(t.int32_data):
        storage = 'int32_data'
    elif len(t.int64_data):
        storage = 'int64_data'
    elif len(t.double_data):
        storage = 'double_data'
    else:
        storage = 'empty'
    # numpy_helper.to_array loads external data relative to base_dir (and fills raw_data of `t` in passing,
    # which is why the storage kind is read first).
    arr = numpy_helper.to_array(t, base_dir=model_dir) if external else numpy_helper.to_array(t)
    return {
        'path': '/'.join(path),
        'name': name if name is not None else t.name,
        'kind': kind,
        'dims': [int(d) for d in t.dims],
        'dataType': int(t.data_type),
        'storage': storage,
        'values': [float(v) for v in arr.astype(np.float64).ravel()],
    }


def describe_sparse(sp, path):
    """A sparse initializer, densified with numpy (indices linearized [NNZ] or coordinates [NNZ, rank])."""
    values = numpy_helper.to_array(sp.values)
    indices = numpy_helper.to_array(sp.indices)
    dims = [int(d) for d in sp.dims]
    dense = np.zeros(int(np.prod(dims)), dtype=values.dtype)
    flat = indices if indices.ndim == 1 else np.ravel_multi_index(indices.T, dims)
    dense[flat] = values
    return {
        'path': '/'.join(path),
        'name': sp.values.name,
        'kind': 'sparse-initializer',
        'dims': dims,
        'dataType': int(sp.values.data_type),
        'storage': 'raw_data' if sp.values.raw_data else 'float_data',
        'values': [float(v) for v in dense.astype(np.float64)],
    }


def sparse_model():
    # W [8, 4] with 6 non-zeros; one sparse initializer with linear indices, one with [NNZ, 2] coordinates.
    w = np.zeros((8, 4), dtype=np.float32)
    flat = np.array([1, 5, 6, 17, 22, 31])
    w.ravel()[flat] = rand(6)
    sp1 = helper.make_sparse_tensor(numpy_helper.from_array(w.ravel()[flat], 'sparse.w'),
                                    numpy_helper.from_array(flat.astype(np.int64), 'sparse.w.indices'), [8, 4])
    b = np.zeros((4,), dtype=np.float32)
    b[[0, 3]] = rand(2)
    coords = np.array([[0], [3]], dtype=np.int64)
    sp2 = helper.make_sparse_tensor(numpy_helper.from_array(b[[0, 3]], 'sparse.b'),
                                    numpy_helper.from_array(coords, 'sparse.b.indices'), [4])
    graph = helper.make_graph(
        [helper.make_node('MatMul', ['x', 'sparse.w'], ['h'], name='mm'),
         helper.make_node('Add', ['h', 'sparse.b'], ['y'], name='add')],
        'sparse',
        [helper.make_tensor_value_info('x', TensorProto.FLOAT, [2, 8])],
        [helper.make_tensor_value_info('y', TensorProto.FLOAT, [2, 4])],
        sparse_initializer=[sp1, sp2])
    model = helper.make_model(graph, opset_imports=OPSET, producer_name='mixq-fixtures')
    model.ir_version = 8
    return model


def save(model, name, external=False):
    onnx.checker.check_model(model)
    path = os.path.join(OUT, name + '.onnx')
    if external:
        data = name + '.onnx_data'
        if os.path.exists(os.path.join(OUT, data)):
            os.remove(os.path.join(OUT, data))
        onnx.save_model(model, path, save_as_external_data=True, all_tensors_to_one_file=True,
                        location=data, size_threshold=0)
    else:
        onnx.save_model(model, path)
    reloaded = onnx.load_model(path, load_external_data=False)
    weights = collect(reloaded.graph, ['graph'], [], OUT)
    with open(os.path.join(OUT, name + '.weights.json'), 'w') as f:
        json.dump({'model': name + '.onnx', 'onnxVersion': onnx.__version__, 'weights': weights}, f, indent=1)
    print(f'{name}.onnx: {os.path.getsize(path)} bytes, {len(weights)} weights')


def mlp_model(name):
    emb = numpy_helper.from_array(rand(10, 8), 'model.embed_tokens.weight')
    w1 = numpy_helper.from_array(rand(8, 16), 'model.layers.0.fc1.weight')
    # float_data storage instead of raw_data: the reader must handle both.
    b1 = helper.make_tensor('model.layers.0.fc1.bias', TensorProto.FLOAT, [16], rand(16).tolist())
    w2 = numpy_helper.from_array(rand(4, 16), 'model.layers.1.fc2.weight')
    b2 = numpy_helper.from_array(rand(4), 'model.layers.1.fc2.bias')
    ln_s = numpy_helper.from_array(rand(4), 'model.norm.weight')
    ln_b = numpy_helper.from_array(rand(4), 'model.norm.bias')
    # fp16 in int32_data (one code per int32), the form helper.make_tensor(raw=False) uses.
    half = np.array([0.5, -1.25, 2.0, 65504.0], dtype=np.float16)
    h16 = helper.make_tensor('offset_f16', TensorProto.FLOAT16, [4], half.view(np.uint16).astype(np.int32).tolist(),
                             raw=False)
    # helper.make_tensor(FLOAT16) converts the values itself; build the int32_data by hand to be sure of the bits.
    h16.ClearField('int32_data')
    h16.int32_data.extend(half.view(np.uint16).astype(np.int32).tolist())
    nodes = [
        helper.make_node('Gather', ['model.embed_tokens.weight', 'ids'], ['e'], name='embed'),
        helper.make_node('Add', ['x', 'e'], ['h0'], name='add_embed'),
        helper.make_node('MatMul', ['h0', 'model.layers.0.fc1.weight'], ['h1'], name='layers.0.fc1'),
        helper.make_node('Add', ['h1', 'model.layers.0.fc1.bias'], ['h2'], name='layers.0.fc1.add'),
        helper.make_node('Relu', ['h2'], ['h3'], name='layers.0.relu', doc_string='activation'),
        helper.make_node('Gemm', ['h3', 'model.layers.1.fc2.weight', 'model.layers.1.fc2.bias'], ['h4'],
                         name='layers.1.fc2', transB=1, alpha=1.0),
        helper.make_node('LayerNormalization', ['h4', 'model.norm.weight', 'model.norm.bias'], ['h5'],
                         name='norm', axis=-1, epsilon=1e-5),
        helper.make_node('Cast', ['offset_f16'], ['off'], name='cast_offset', to=TensorProto.FLOAT),
        helper.make_node('Add', ['h5', 'off'], ['y'], name='add_offset'),
    ]
    graph = helper.make_graph(
        nodes, 'mlp',
        [helper.make_tensor_value_info('x', TensorProto.FLOAT, [2, 8]),
         helper.make_tensor_value_info('ids', TensorProto.INT64, [2])],
        [helper.make_tensor_value_info('y', TensorProto.FLOAT, [2, 4])],
        [emb, w1, b1, w2, b2, ln_s, ln_b, h16],
        doc_string='tiny MLP fixture for mixq')
    model = helper.make_model(graph, opset_imports=OPSET, producer_name='mixq-fixtures', producer_version='1')
    model.ir_version = 8
    model.doc_string = 'mixq test fixture'
    helper.set_model_props(model, {'author': 'mixq', 'purpose': 'onnx reader tests'})
    model = onnx.shape_inference.infer_shapes(model)  # fills value_info, which a rewrite must keep
    return model


def constants_model():
    def const(name, arr):
        return helper.make_node('Constant', [], [name], name=name + '_const',
                                value=numpy_helper.from_array(arr, name))
    nodes = [
        const('conv2d_0.w_0', rand(4, 3, 3, 3)),
        const('conv2d_0.b_0', rand(4)),
        helper.make_node('Conv', ['x', 'conv2d_0.w_0', 'conv2d_0.b_0'], ['c'], name='conv2d_0', pads=[1, 1, 1, 1]),
        const('batch_norm_0.w_0', rand(4)),
        const('batch_norm_0.b_0', rand(4)),
        const('batch_norm_0.w_1', rand(4)),
        const('batch_norm_0.w_2', np.abs(rand(4)) + 0.5),
        helper.make_node('BatchNormalization',
                         ['c', 'batch_norm_0.w_0', 'batch_norm_0.b_0', 'batch_norm_0.w_1', 'batch_norm_0.w_2'],
                         ['bn'], name='batch_norm_0', epsilon=1e-5),
        helper.make_node('Flatten', ['bn'], ['f'], name='flatten_0', axis=1),
        const('linear_0.w_0', rand(4 * 6 * 6, 5)),
        helper.make_node('MatMul', ['f', 'linear_0.w_0'], ['y'], name='linear_0'),
    ]
    graph = helper.make_graph(
        nodes, 'paddle_style',
        [helper.make_tensor_value_info('x', TensorProto.FLOAT, [1, 3, 6, 6])],
        [helper.make_tensor_value_info('y', TensorProto.FLOAT, [1, 5])])
    model = helper.make_model(graph, opset_imports=OPSET, producer_name='paddle2onnx-like')
    model.ir_version = 8
    return model


def if_model():
    # Inner If (nested inside the then-branch): its own branches each hold a Constant.
    inner_then = helper.make_graph(
        [helper.make_node('Constant', [], ['k_then'], name='inner_then_const',
                          value=numpy_helper.from_array(rand(4), 'k_then')),
         helper.make_node('Add', ['t1', 'k_then'], ['inner_out_t'], name='inner_then_add')],
        'inner_then', [], [helper.make_tensor_value_info('inner_out_t', TensorProto.FLOAT, [4])])
    inner_else = helper.make_graph(
        [helper.make_node('Identity', ['t1'], ['inner_out_e'], name='inner_else_id')],
        'inner_else', [], [helper.make_tensor_value_info('inner_out_e', TensorProto.FLOAT, [4])])
    then_branch = helper.make_graph(
        [helper.make_node('Mul', ['x', 'then.w'], ['t1'], name='then_mul'),
         helper.make_node('If', ['cond2'], ['then_out'], name='inner_if',
                          then_branch=inner_then, else_branch=inner_else)],
        'then_branch', [], [helper.make_tensor_value_info('then_out', TensorProto.FLOAT, [4])],
        [numpy_helper.from_array(rand(4), 'then.w')])
    else_branch = helper.make_graph(
        [helper.make_node('Constant', [], ['else.w'], name='else_const',
                          value=numpy_helper.from_array(rand(4), 'else.w')),
         helper.make_node('Add', ['x', 'else.w'], ['else_out'], name='else_add')],
        'else_branch', [], [helper.make_tensor_value_info('else_out', TensorProto.FLOAT, [4])])
    graph = helper.make_graph(
        [helper.make_node('If', ['cond'], ['y'], name='outer_if', then_branch=then_branch, else_branch=else_branch)],
        'if_model',
        [helper.make_tensor_value_info('x', TensorProto.FLOAT, [4]),
         helper.make_tensor_value_info('cond', TensorProto.BOOL, []),
         helper.make_tensor_value_info('cond2', TensorProto.BOOL, [])],
        [helper.make_tensor_value_info('y', TensorProto.FLOAT, [4])])
    model = helper.make_model(graph, opset_imports=OPSET, producer_name='mixq-fixtures')
    model.ir_version = 8
    return model


def blind_model():
    w1 = numpy_helper.from_array(rand(16, 32) * 0.3, 'w1')
    w2 = numpy_helper.from_array(rand(32, 8) * 0.3, 'w2')
    shape = numpy_helper.from_array(np.array([1, 8, 1], dtype=np.int64), 'shape')
    nodes = [
        helper.make_node('MatMul', ['x', 'w1'], ['h'], name='mm1'),
        helper.make_node('Relu', ['h'], ['features'], name='relu'),
        helper.make_node('MatMul', ['features', 'w2'], ['y'], name='mm2'),
        helper.make_node('Reshape', ['y', 'shape'], ['y3'], name='reshape'),
        helper.make_node('Softmax', ['y3'], ['prob'], name='softmax', axis=2),
    ]
    graph = helper.make_graph(
        nodes, 'blind',
        [helper.make_tensor_value_info('x', TensorProto.FLOAT, [1, 16])],
        [helper.make_tensor_value_info('prob', TensorProto.FLOAT, [1, 8, 1]),
         helper.make_tensor_value_info('features', TensorProto.FLOAT, [1, 32])],
        [w1, w2, shape])
    return helper.make_model(graph, opset_imports=OPSET, producer_name='mixq-fixtures')


def main():
    os.makedirs(OUT, exist_ok=True)
    save(mlp_model('mlp'), 'mlp')
    save(constants_model(), 'constants')
    save(if_model(), 'ifsub')
    save(mlp_model('external'), 'external', external=True)
    save(sparse_model(), 'sparse')
    save(blind_model(), 'blind')
    total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
    print(f'total {total} bytes in {OUT}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
