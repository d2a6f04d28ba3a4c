#!/usr/bin/env node
// node packages/cpu-profile/src/main.ts [--top N] [--from US --to US] FILE.cpuprofile…: the summary of index.ts, as Markdown.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { summariseProfiles, summaryMarkdown, type CpuProfile } from './index.ts';

const { values, positionals } = parseArgs({ allowPositionals: true, options: { top: { type: 'string', default: '15' }, from: { type: 'string' }, to: { type: 'string' } } });
const profiles = positionals.map((f) => JSON.parse(readFileSync(f, 'utf8')) as CpuProfile);
const window = values.from && values.to ? { fromUs: Number(values.from), toUs: Number(values.to) } : undefined;
process.stdout.write(`${summaryMarkdown(summariseProfiles(profiles, window), Number(values.top)).join('\n')}\n`);
