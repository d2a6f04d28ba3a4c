export interface IdGenerator {
  /** Time-ordered and unique across processes, so ids sort roughly by creation. */
  next(): string;
}

const HEX = Array.from({ length: 256 }, (_, b) => b.toString(16).padStart(2, '0'));
/** Random bytes drawn from the CSPRNG a page at a time, each byte handed out once: one call per 409 ids, not one per id. */
const pool = new Uint8Array(4096);
let used = pool.length;

/** UUIDv7 (RFC 9562): 48 bits of Unix milliseconds, then random bits. */
export const uuidV7: IdGenerator = {
  next() {
    if (used + 10 > pool.length) {
      crypto.getRandomValues(pool);
      used = 0;
    }
    const r = used;
    used += 10;
    const ms = Date.now();
    const h = HEX;
    const time = h[Math.floor(ms / 2 ** 40) & 0xff]! + h[Math.floor(ms / 2 ** 32) & 0xff]! + h[(ms >>> 24) & 0xff]! + h[(ms >>> 16) & 0xff]! +
      '-' + h[(ms >>> 8) & 0xff]! + h[ms & 0xff]!;
    return `${time}-${h[0x70 | (pool[r]! & 0x0f)]}${h[pool[r + 1]!]}-${h[0x80 | (pool[r + 2]! & 0x3f)]}${h[pool[r + 3]!]}-` +
      `${h[pool[r + 4]!]}${h[pool[r + 5]!]}${h[pool[r + 6]!]}${h[pool[r + 7]!]}${h[pool[r + 8]!]}${h[pool[r + 9]!]}`;
  },
};

/** The form of an issued id; its source is the same pattern in SQL (`~`), where a stored id is checked before a cast. */
export const ISSUED_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * Whether `text` is an id exactly as this service issues them (uuidV7 above; PostgreSQL prints
 * its uuids the same way): lower-case hex, dashed 8-4-4-4-12. Every order and event id a client
 * sends is judged here and nowhere else, on every route alike (contract v1.2): any other string
 * names no order or event, even one a uuid column would read as the same value (upper case,
 * braces, no dashes, a `urn:uuid:` prefix, surrounding spaces).
 */
export const isIssuedId = (text: unknown): text is string => typeof text === 'string' && ISSUED_ID.test(text);
