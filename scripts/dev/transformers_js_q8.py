#!/usr/bin/python3
"""Dev-only: a decoder ONNX as transformers.js's scripts/quantize.py writes it in its q8 mode, to measure the
real file against mixq's weights-only q8 baseline (onnxruntime's Python package is not installed here, so the
graph onnxruntime's quantize_dynamic (IntegerOps, QInt8 weights, per_channel off, reduce_range off) produces is
built with the onnx package):

  MatMul(A, B const)   -> DynamicQuantizeLinear(A) -> MatMulInteger(A_q, B_int8, A_zp, 0) -> Cast(float)
                          -> Mul(A_scale * B_scale)     (uint8 activations, per tensor, per run)
  Gather(table const)  -> Gather(table_int8) -> DequantizeLinear(scale, 0)
  weights: int8 codes rint(w / s) clipped to -127..127, s = max|w| / 127 (one scale per tensor)

    /usr/bin/python3 scripts/dev/transformers_js_q8.py <in.onnx> <out.onnx>

Score the result with scripts/dev/score-lm-files.ts.
"""
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

src, dst = sys.argv[1], sys.argv[2]
m = onnx.load(src)
g = m.graph
inits = {t.name: t for t in g.initializer}
nodes, added = [], []


def int8_per_tensor(name):
    w = numpy_helper.to_array(inits[name]).astype(np.float32)
    s = np.float32(np.abs(w).max() / 127.0)
    q = np.clip(np.rint(w / s), -127, 127).astype(np.int8)
    added.extend(
        [
            numpy_helper.from_array(q, name + "_quantized"),
            numpy_helper.from_array(np.array(s, np.float32), name + "_scale"),
            numpy_helper.from_array(np.array(0, np.int8), name + "_zero_point"),
        ]
    )


def const2d(name):
    return name in inits and len(inits[name].dims) == 2


for n in g.node:
    p = n.name or n.output[0]
    if n.op_type == "MatMul" and const2d(n.input[1]):
        b = n.input[1]
        int8_per_tensor(b)
        nodes += [
            helper.make_node("DynamicQuantizeLinear", [n.input[0]], [p + "_aq", p + "_as", p + "_az"]),
            helper.make_node("MatMulInteger", [p + "_aq", b + "_quantized", p + "_az", b + "_zero_point"], [p + "_yi"]),
            helper.make_node("Cast", [p + "_yi"], [p + "_yf"], to=TensorProto.FLOAT),
            helper.make_node("Mul", [p + "_as", b + "_scale"], [p + "_s"]),
            helper.make_node("Mul", [p + "_yf", p + "_s"], [n.output[0]]),
        ]
    elif n.op_type == "Gather" and const2d(n.input[0]):
        t = n.input[0]
        int8_per_tensor(t)
        attrs = {a.name: helper.get_attribute_value(a) for a in n.attribute}
        nodes += [
            helper.make_node("Gather", [t + "_quantized", n.input[1]], [p + "_gq"], **attrs),
            helper.make_node("DequantizeLinear", [p + "_gq", t + "_scale", t + "_zero_point"], [n.output[0]]),
        ]
    else:
        nodes.append(n)
used = {i for n in nodes for i in n.input}
keep = [t for t in g.initializer if t.name in used]
del g.initializer[:]
g.initializer.extend(keep + added)
del g.node[:]
g.node.extend(nodes)
onnx.checker.check_model(m)
onnx.save(m, dst)
print("wrote", dst)
