/**
 * Which byte ranges to read to get a set of small, scattered rows from one object (codebook rows
 * from R2). Every read costs a round trip and a subrequest; every byte read between rows costs
 * transfer. So: rows closer than `mergeGap` share a read, and if that still leaves more than
 * `maxRanges` reads, the smallest remaining gaps are merged too, which reads the fewest extra
 * bytes for that number of reads.
 */
import type { ByteRange } from "@revq/shared";

export type RangePlanOptions = { mergeGap: number; maxRanges: number };

/** `offsets` sorted ascending, distinct, each the start of a row of `rowBytes` bytes. */
export function planRangeReads(
  offsets: readonly number[],
  rowBytes: number,
  options: RangePlanOptions,
): ByteRange[] {
  if (offsets.length === 0) return [];
  const gaps = offsets.slice(1).map((offset, i) => offset - (offsets[i] + rowBytes));
  const merged = gaps.map((gap) => gap <= options.mergeGap);
  let reads = merged.filter((m) => !m).length + 1;
  if (reads > options.maxRanges) {
    const open = gaps.map((gap, i) => [gap, i] as const).filter(([, i]) => !merged[i]);
    open.sort((a, b) => a[0] - b[0]);
    for (const [, i] of open) {
      if (reads <= options.maxRanges) break;
      merged[i] = true;
      reads--;
    }
  }
  const ranges: ByteRange[] = [];
  let start = offsets[0];
  for (let i = 0; i < gaps.length; i++) {
    if (!merged[i]) {
      ranges.push({ offset: start, length: offsets[i] + rowBytes - start });
      start = offsets[i + 1];
    }
  }
  ranges.push({ offset: start, length: offsets[offsets.length - 1] + rowBytes - start });
  return ranges;
}
