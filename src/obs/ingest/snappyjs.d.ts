/** Types of snappyjs (Snappy block format in pure JavaScript), which ships none. */
declare module 'snappyjs' {
  /** Decompresses a Snappy block; throws when the input is not one or would exceed `maxLength` bytes. */
  export function uncompress(compressed: Uint8Array, maxLength?: number): Uint8Array;
  /** Compresses into a Snappy block. */
  export function compress(uncompressed: Uint8Array): Uint8Array;
  const snappy: { uncompress: typeof uncompress; compress: typeof compress };
  export default snappy;
}
