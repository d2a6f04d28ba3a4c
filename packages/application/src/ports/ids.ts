export interface IdGenerator {
  /** Time-ordered and unique across processes, so ids sort roughly by creation. */
  next(): string;
}

/** UUIDv7 (RFC 9562): 48 bits of Unix milliseconds, then random bits. */
export const uuidV7: IdGenerator = {
  next() {
    const bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    const ms = Date.now();
    bytes[0] = Math.floor(ms / 2 ** 40) & 0xff;
    bytes[1] = Math.floor(ms / 2 ** 32) & 0xff;
    bytes[2] = (ms >>> 24) & 0xff;
    bytes[3] = (ms >>> 16) & 0xff;
    bytes[4] = (ms >>> 8) & 0xff;
    bytes[5] = ms & 0xff;
    bytes[6] = 0x70 | (bytes[6]! & 0x0f);
    bytes[8] = 0x80 | (bytes[8]! & 0x3f);
    const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
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
