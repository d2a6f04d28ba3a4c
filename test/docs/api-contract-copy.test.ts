import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, test } from 'vitest';

const root = fileURLToPath(new URL('../..', import.meta.url));
const copy = path.join(root, 'docs/api-contract.md');
/** The contract's source of truth, next to the repository where it is checked out that way. */
const shared = path.resolve(root, '../shared/api-contract.md');

if (existsSync(shared)) {
  test('docs/api-contract.md is the same as ../shared/api-contract.md', () => {
    expect(readFileSync(copy, 'utf8'), 'docs/api-contract.md differs from ../shared/api-contract.md: copy the shared contract in').toBe(readFileSync(shared, 'utf8'));
  });
} else {
  test.skip(`docs/api-contract.md against ../shared/api-contract.md: skipped, ${shared} does not exist in this checkout`, () => undefined);
}

test('docs/api-contract.md exists, and both READMEs link to it', () => {
  expect(readFileSync(copy, 'utf8')).toMatch(/^# API contract/);
  for (const readme of ['README.md', 'README.ko.md']) {
    const text = readFileSync(path.join(root, readme), 'utf8');
    expect(text, readme).toContain('(docs/api-contract.md)');
    expect(text, readme).not.toContain('](../shared/api-contract.md)');
  }
});
