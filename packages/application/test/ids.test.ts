import { describe, expect, test } from 'vitest';
import { isIssuedId, uuidV7 } from '@shop/application';

describe('isIssuedId', () => {
  test('every id uuidV7 issues is one', () => {
    for (let i = 0; i < 1_000; i++) expect(isIssuedId(uuidV7.next())).toBe(true);
  });

  test('only the exact text: other spellings of the same uuid, which PostgreSQL would accept, are not', () => {
    const id = uuidV7.next();
    const hex = id.replaceAll('-', '');
    const letter = id.search(/[a-f]/);
    for (const other of [
      id.toUpperCase(),
      id.slice(0, letter) + id[letter]!.toUpperCase() + id.slice(letter + 1),
      `{${id}}`,
      ` ${id}`,
      `${id} `,
      `${id}\n`,
      hex,
      `urn:uuid:${id}`,
      `${id}0`,
      id.slice(1),
      '-'.repeat(36),
      'not-an-id',
      '',
    ]) {
      expect(isIssuedId(other), JSON.stringify(other)).toBe(false);
    }
  });

  test('a value that is not a string is not one', () => {
    for (const other of [null, undefined, 42, [uuidV7.next()], { id: uuidV7.next() }]) expect(isIssuedId(other)).toBe(false);
  });
});
