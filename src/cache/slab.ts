/**
 * Bytes of the cache tier's small string values, outside the JavaScript heap: fixed-size slots
 * carved from 1 MiB pages, one free list per slot size. A slot is named by a small integer (its
 * page and offset), so an entry refers to its value's bytes with a number rather than an object:
 * writing a value stores no pointer into an entry and creates no object for V8's scavenger to
 * copy (docs/performance.md §4: those pointers and survivors were the p99 of SET at -P 1). The
 * same idea as Redis's use of jemalloc size classes, kept to what the tier needs.
 *
 * Pages are never returned while the slab lives (freed slots are reused by values of their
 * size); {@link ByteSlab.reset} drops them all (FLUSHALL).
 */

/** Bytes per page. A slot handle is `page * PAGE_BYTES + offset`, kept below 2^31 (a V8 small integer). */
export const PAGE_BYTES = 1 << 20;
/** Largest slot: values longer than this are held in a Buffer of their own. */
export const MAX_SLOT_BYTES = 4096;
/** Most pages (2 GiB of small values); beyond it values are held in Buffers of their own. */
const MAX_PAGES = 2047;

/**
 * The slot size that holds `len` bytes: multiples of 16 (a value rewritten with a length in the
 * same 16-byte band reuses its slot), or -1 when longer than {@link MAX_SLOT_BYTES}.
 */
export function slotSize(len: number): number {
  if (len > MAX_SLOT_BYTES) return -1;
  return len <= 16 ? 16 : (len + 15) & ~15;
}

/** Bytes {@link ByteSlab.writeString} needs for `s`: one per character, two when `wide`. */
export function stringBytes(s: string, wide: boolean): number {
  return wide ? 2 * s.length : s.length;
}

/** Whether `s` has a character past U+00FF (so it is stored two bytes per character). */
export function isWide(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0xff) return true;
  return false;
}

/** Fixed-size slots of bytes in pages off the JavaScript heap, named by integer handles. */
export class ByteSlab {
  private pages: Buffer[] = [];
  /** Free handles per slot size / 16. */
  private free: number[][] = [];
  /** Where the next new slot is carved: page index and offset in it (page -1: none yet). */
  private page = -1;
  private offset = PAGE_BYTES;

  /** Bytes of pages held (what the slab costs the process). */
  get bytes(): number {
    return this.pages.length * PAGE_BYTES;
  }

  /**
   * A slot of `size` bytes (a {@link slotSize}), or -1 when the slab is at its page limit.
   * The slot's bytes are whatever was there before.
   */
  alloc(size: number): number {
    const list = this.free[size >> 4];
    if (list !== undefined && list.length > 0) return list.pop() as number;
    if (this.offset + size > PAGE_BYTES) {
      if (this.pages.length >= MAX_PAGES) return -1;
      this.pages.push(Buffer.allocUnsafeSlow(PAGE_BYTES));
      this.page = this.pages.length - 1;
      this.offset = 0;
    }
    const h = this.page * PAGE_BYTES + this.offset;
    this.offset += size;
    return h;
  }

  /** Returns slot `h` of `size` bytes for reuse. */
  release(h: number, size: number): void {
    (this.free[size >> 4] ??= []).push(h);
  }

  /** Copies `src` into slot `h` (which must be at least `src.length` bytes). */
  write(h: number, src: Buffer): void {
    const page = this.pages[Math.floor(h / PAGE_BYTES)] as Buffer;
    const at = h % PAGE_BYTES;
    const len = src.length;
    if (len <= 32) for (let i = 0; i < len; i++) page[at + i] = src[i] as number;
    else src.copy(page, at, 0, len);
  }

  /** A copy of the first `len` bytes of slot `h`. */
  read(h: number, len: number): Buffer {
    const page = this.pages[Math.floor(h / PAGE_BYTES)] as Buffer;
    const at = h % PAGE_BYTES;
    const out = Buffer.allocUnsafe(len);
    if (len <= 32) for (let i = 0; i < len; i++) out[i] = page[at + i] as number;
    else page.copy(out, 0, at, at + len);
    return out;
  }

  /**
   * Copies the characters of `s` into slot `h` (at least {@link stringBytes} bytes): one byte
   * each, or with `wide` two (UTF-16LE), for a string with a character past U+00FF.
   */
  writeString(h: number, s: string, wide: boolean): void {
    const page = this.pages[Math.floor(h / PAGE_BYTES)] as Buffer;
    const at = h % PAGE_BYTES;
    if (!wide) {
      for (let i = 0; i < s.length; i++) page[at + i] = s.charCodeAt(i);
      return;
    }
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      page[at + 2 * i] = c & 0xff;
      page[at + 2 * i + 1] = c >>> 8;
    }
  }

  /** Whether slot `h` holds `s` as {@link writeString} stored it (`len` bytes, `wide` as then). */
  equalsString(h: number, len: number, wide: boolean, s: string): boolean {
    if (len !== (wide ? 2 * s.length : s.length)) return false;
    const page = this.pages[Math.floor(h / PAGE_BYTES)] as Buffer;
    const at = h % PAGE_BYTES;
    if (!wide) {
      for (let i = 0; i < len; i++) if (page[at + i] !== s.charCodeAt(i)) return false;
      return true;
    }
    for (let i = 0; i < s.length; i++) if (((page[at + 2 * i] as number) | ((page[at + 2 * i + 1] as number) << 8)) !== s.charCodeAt(i)) return false;
    return true;
  }

  /** The string slot `h` holds (`len` bytes written by {@link writeString}). */
  readString(h: number, len: number, wide: boolean): string {
    const page = this.pages[Math.floor(h / PAGE_BYTES)] as Buffer;
    const at = h % PAGE_BYTES;
    return page.toString(wide ? 'utf16le' : 'latin1', at, at + len);
  }

  /** Forgets every slot and page (when no entry refers to any). */
  reset(): void {
    this.pages = [];
    this.free = [];
    this.page = -1;
    this.offset = PAGE_BYTES;
  }
}
