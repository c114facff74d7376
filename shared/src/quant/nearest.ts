import type { Codebook } from "./codebook.ts";

/**
 * Exact nearest-code search: each token (D values) → the index of the closest code of its group
 * by Euclidean distance, ties to the lowest index (DESIGN.md, "Quantization").
 *
 * Distances are summed squared differences in float64 of the float32 inputs, so identical codes
 * give bit-identical distances and the tie rule is exact.
 */
export type NearestResult = {
  /** (B, T) code index per token. */
  ids: Uint32Array;
  /** (B, T) squared distance to the chosen code. */
  squaredDistances: Float64Array;
};

/**
 * The exhaustive search: every code of the group, in index order. The reference the fast search
 * is tested against, and the right choice for tiny codebooks.
 */
export function nearestCodesExhaustive(
  codebook: Codebook,
  vectors: Float32Array,
  tokens: number,
): NearestResult {
  const { groups, codes, dim, data } = codebook;
  const count = checkVectors(vectors, tokens, dim);
  const ids = new Uint32Array(count);
  const squaredDistances = new Float64Array(count);
  for (let i = 0; i < count; i++) {
    const base = ((i % tokens) % groups) * codes * dim;
    let best = Number.POSITIVE_INFINITY;
    let bestId = 0;
    for (let k = 0; k < codes; k++) {
      let d = 0;
      for (let j = 0; j < dim; j++) {
        const diff = vectors[i * dim + j] - data[base + k * dim + j];
        d += diff * diff;
      }
      if (d < best) {
        best = d;
        bestId = k;
      }
    }
    ids[i] = bestId;
    squaredDistances[i] = best;
  }
  return { ids, squaredDistances };
}

/** Codes per k-d tree leaf: small enough to prune well, large enough to amortise the walk. */
const LEAF_SIZE = 8;

/**
 * The fast exact search: one k-d tree per group. Each node halves its codes at the median of the
 * dimension with the widest spread; a query descends to its own leaf first, then visits the other
 * side of a split only if that side's box is no farther than the best distance found (equality
 * still visits, so the lowest index among exact ties is always found). For the paper's 512-token
 * shape it evaluates a small fraction of the 16384 codes per token (bench/nearest.ts).
 *
 * The tree is implicit: node n covers a contiguous range of the reordered codes, its children are
 * 2n+1 (lower half) and 2n+2 (upper half), so only the split of each node is stored.
 */
export class NearestCodeIndex {
  readonly codebook: Codebook;
  private readonly nodesPerGroup: number;
  /** (G, nodes) split dimension per internal node. */
  private readonly splitDim: Uint8Array;
  /** (G, nodes) split value: the lower half is ≤ it, the upper half ≥ it. */
  private readonly splitValue: Float32Array;
  /** (G, K) original index of each reordered code. */
  private readonly order: Uint32Array;
  /** (G, K, D) codes in tree order, so a leaf is a contiguous run. */
  private readonly codes: Float32Array;

  constructor(codebook: Codebook) {
    const { groups, codes, dim, data } = codebook;
    if (dim > 255) throw new RangeError(`code dimension ${dim} is too large for the search index`);
    this.codebook = codebook;
    let depth = 0;
    while (Math.ceil(codes / 2 ** depth) > LEAF_SIZE) depth++;
    this.nodesPerGroup = 2 ** depth - 1;
    this.splitDim = new Uint8Array(groups * this.nodesPerGroup);
    this.splitValue = new Float32Array(groups * this.nodesPerGroup);
    this.order = new Uint32Array(groups * codes);
    this.codes = data.slice();
    for (let g = 0; g < groups; g++) {
      const order = this.order.subarray(g * codes, (g + 1) * codes);
      for (let k = 0; k < codes; k++) order[k] = k;
      this.build(
        g,
        this.codes.subarray(g * codes * dim, (g + 1) * codes * dim),
        order,
        0,
        0,
        codes,
      );
    }
  }

  /** vectors: (B, T, D) flat; returns ids and squared distances, (B, T). */
  search(vectors: Float32Array, tokens: number): NearestResult {
    const { groups, dim } = this.codebook;
    const count = checkVectors(vectors, tokens, dim);
    const ids = new Uint32Array(count);
    const squaredDistances = new Float64Array(count);
    const records = count / tokens;
    // Group-major order keeps one group's tree hot in cache across the whole batch.
    for (let g = 0; g < groups; g++) {
      for (let b = 0; b < records; b++) {
        for (let t = g; t < tokens; t += groups) {
          const i = b * tokens + t;
          this.searchOne(g, vectors, i * dim, ids, squaredDistances, i);
        }
      }
    }
    return { ids, squaredDistances };
  }

  /** Splits codes lo..hi of one group (reordering them and their ids in place) under node. */
  private build(
    g: number,
    codes: Float32Array,
    order: Uint32Array,
    node: number,
    lo: number,
    hi: number,
  ) {
    if (node >= this.nodesPerGroup) return;
    const dim = this.codebook.dim;
    const splitDim = widestDimension(codes, dim, lo, hi);
    const mid = (lo + hi) >>> 1;
    selectNth(codes, dim, splitDim, order, lo, hi, mid);
    this.splitDim[g * this.nodesPerGroup + node] = splitDim;
    this.splitValue[g * this.nodesPerGroup + node] = codes[mid * dim + splitDim];
    this.build(g, codes, order, 2 * node + 1, lo, mid);
    this.build(g, codes, order, 2 * node + 2, mid, hi);
  }

  // State of the query in progress (searches are synchronous, so one set serves them all).
  private g = 0;
  private qx: Float32Array = new Float32Array(0);
  private qOff = 0;
  private best = 0;
  private bestId = 0;
  /** best, widened by the last-bit rounding of float64 sums: subtrees beyond it are skipped. */
  private reach = 0;
  /** Per dimension, the query's offset from the box of the subtree being visited. */
  private readonly offsets = new Float64Array(256);

  private searchOne(
    g: number,
    x: Float32Array,
    xOff: number,
    ids: Uint32Array,
    dists: Float64Array,
    out: number,
  ): void {
    this.best = Number.POSITIVE_INFINITY;
    this.bestId = 0;
    this.reach = Number.POSITIVE_INFINITY;
    this.qx = x;
    this.qOff = xOff;
    this.g = g;
    this.offsets.fill(0, 0, this.codebook.dim);
    this.visit(0, 0, this.codebook.codes, 0);
    ids[out] = this.bestId;
    dists[out] = this.best;
  }

  /**
   * Searches subtree node (codes lo..hi), whose box is at squared distance ≥ bound from the query.
   * The far child's bound replaces this split's old offset by the distance to its plane (Arya &
   * Mount's incremental distance), a much tighter bound than the plane distance alone.
   */
  private visit(node: number, lo: number, hi: number, bound: number): void {
    const { nodesPerGroup, codebook } = this;
    const dim = codebook.dim;
    const x = this.qx;
    const xOff = this.qOff;
    if (node >= nodesPerGroup) {
      const codeBase = this.g * codebook.codes;
      const { codes, order } = this;
      let best = this.best;
      for (let s = lo; s < hi; s++) {
        const c = (codeBase + s) * dim;
        let d = 0;
        for (let j = 0; j < dim; j++) {
          const diff = x[xOff + j] - codes[c + j];
          d += diff * diff;
        }
        if (d <= best) {
          const id = order[codeBase + s];
          if (d < best || id < this.bestId) {
            best = d;
            this.bestId = id;
          }
        }
      }
      if (best < this.best) {
        this.best = best;
        this.reach = best * (1 + 1e-12) + 1e-300;
      }
      return;
    }
    const n = this.g * nodesPerGroup + node;
    const j = this.splitDim[n];
    const diff = x[xOff + j] - this.splitValue[n];
    const mid = (lo + hi) >>> 1;
    if (diff < 0) this.visit(2 * node + 1, lo, mid, bound);
    else this.visit(2 * node + 2, mid, hi, bound);
    const old = this.offsets[j];
    const farBound = bound - old * old + diff * diff;
    if (farBound > this.reach) return;
    this.offsets[j] = diff;
    if (diff < 0) this.visit(2 * node + 2, mid, hi, farBound);
    else this.visit(2 * node + 1, lo, mid, farBound);
    this.offsets[j] = old;
  }
}

function checkVectors(vectors: Float32Array, tokens: number, dim: number): number {
  const count = vectors.length / dim;
  if (!Number.isInteger(count) || count % tokens !== 0) {
    throw new RangeError(
      `${vectors.length} values are not a whole number of records of ${tokens} tokens × ${dim}`,
    );
  }
  return count;
}

/**
 * The dimension along which codes lo..hi spread widest, judged on at most ~256 of them: any split
 * keeps the search exact, and a sampled spread is as good a choice at a fraction of the cost.
 */
function widestDimension(codes: Float32Array, dim: number, lo: number, hi: number): number {
  const step = Math.max(1, Math.floor((hi - lo) / 256));
  let widest = 0;
  let widestSpread = -1;
  for (let j = 0; j < dim; j++) {
    let min = Number.POSITIVE_INFINITY;
    let max = Number.NEGATIVE_INFINITY;
    for (let s = lo; s < hi; s += step) {
      const v = codes[s * dim + j];
      if (v < min) min = v;
      if (v > max) max = v;
    }
    if (max - min > widestSpread) {
      widestSpread = max - min;
      widest = j;
    }
  }
  return widest;
}

/**
 * Quickselect of codes lo..hi by coordinate j, moving codes and their ids together: afterwards
 * slot nth holds the code of rank nth, the slots before it are ≤ it and those after it ≥ it.
 */
function selectNth(
  codes: Float32Array,
  dim: number,
  j: number,
  order: Uint32Array,
  lo: number,
  hi: number,
  nth: number,
): void {
  let left = lo;
  let right = hi - 1;
  while (left < right) {
    const pivot = codes[((left + right) >>> 1) * dim + j];
    let i = left;
    let k = right;
    while (i <= k) {
      while (codes[i * dim + j] < pivot) i++;
      while (codes[k * dim + j] > pivot) k--;
      if (i <= k) {
        swapCodes(codes, dim, order, i, k);
        i++;
        k--;
      }
    }
    if (nth <= k) right = k;
    else if (nth >= i) left = i;
    else return;
  }
}

function swapCodes(codes: Float32Array, dim: number, order: Uint32Array, a: number, b: number) {
  const id = order[a];
  order[a] = order[b];
  order[b] = id;
  for (let d = 0; d < dim; d++) {
    const v = codes[a * dim + d];
    codes[a * dim + d] = codes[b * dim + d];
    codes[b * dim + d] = v;
  }
}
