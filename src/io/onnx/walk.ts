/**
 * Visits every graph of an ONNX model: the main graph, subgraphs held in node attributes (If / Loop /
 * Scan bodies, recursively), training-info graphs and function bodies. Each visit gets a path that names
 * where the graph lives, e.g. 'graph/outer_if.then_branch/inner_if.else_branch', and its enclosing scopes,
 * so a subgraph's reference to an outer-scope value can be resolved.
 *
 * Recursion depth is capped (a hostile file can nest subgraphs as deep as its bytes allow).
 */
import { MixqError } from '../../core/errors.ts';
import type {
  FunctionProto,
  GraphProto,
  ModelProto,
  NodeProto,
  SparseTensorProto,
  TensorProto,
} from './proto-types.ts';

/** A graph or a function body: what a visitor sees. */
export interface GraphScope {
  /** Where it lives, e.g. 'graph', 'graph/loop_0.body', 'functions[0]', 'training_info[0].algorithm'. */
  readonly path: string;
  readonly graph: GraphProto | null;
  readonly nodes: readonly NodeProto[];
  readonly initializers: readonly TensorProto[];
  readonly sparseInitializers: readonly SparseTensorProto[];
  /** Enclosing scope (null for top-level graphs and functions). */
  readonly parent: GraphScope | null;
  readonly depth: number;
}

/** How a node is named in paths: its name, or op type and index when the name is empty. */
export function nodeLabel(node: NodeProto, index: number): string {
  return node.name ? node.name : `${node.op_type || 'node'}#${index}`;
}

function scopeOf(graph: GraphProto, path: string, parent: GraphScope | null): GraphScope {
  return {
    path,
    graph,
    nodes: graph.node,
    initializers: graph.initializer,
    sparseInitializers: graph.sparse_initializer,
    parent,
    depth: parent ? parent.depth + 1 : 0,
  };
}

function functionScope(fn: FunctionProto, index: number): GraphScope {
  return {
    path: `functions[${index}]`,
    graph: null,
    nodes: fn.node,
    initializers: [],
    sparseInitializers: [],
    parent: null,
    depth: 0,
  };
}

/**
 * Calls `visit` for every graph scope, parents before children, in file order.
 * @throws MixqError when subgraphs nest deeper than `maxDepth`.
 */
export function forEachGraph(
  model: ModelProto,
  visit: (scope: GraphScope) => void,
  opts: { source: string; maxDepth: number },
): void {
  const walk = (scope: GraphScope): void => {
    if (scope.depth > opts.maxDepth) {
      throw new MixqError('subgraphs nest too deeply', {
        source: opts.source,
        field: scope.path,
        expected: `at most ${opts.maxDepth} levels`,
      });
    }
    visit(scope);
    scope.nodes.forEach((node, i) => {
      for (const attr of node.attribute) {
        const base = `${scope.path}/${nodeLabel(node, i)}.${attr.name}`;
        if (attr.g) walk(scopeOf(attr.g, base, scope));
        attr.graphs.forEach((g, j) => {
          walk(scopeOf(g, `${base}[${j}]`, scope));
        });
      }
    });
  };
  if (model.graph) walk(scopeOf(model.graph, 'graph', null));
  model.training_info.forEach((ti, i) => {
    if (ti.initialization) walk(scopeOf(ti.initialization, `training_info[${i}].initialization`, null));
    if (ti.algorithm) walk(scopeOf(ti.algorithm, `training_info[${i}].algorithm`, null));
  });
  model.functions.forEach((fn, i) => {
    walk(functionScope(fn, i));
  });
}
