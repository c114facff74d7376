/** A run of bytes in a file or object, in the shape of R2's `range` option. */
export type ByteRange = { offset: number; length: number };
