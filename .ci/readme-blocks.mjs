// Writes every ```ts block of a Markdown file as its own module (<out>/block-line-<N>.ts), so the
// consumer app's own TypeScript compiles them as files of a fresh app (.ci/consumer-app.sh).
// Usage: node .ci/readme-blocks.mjs README.md <out folder>
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const [markdownFile, out] = process.argv.slice(2);
const markdown = readFileSync(markdownFile, 'utf8');
mkdirSync(out, { recursive: true });
let count = 0;
for (const m of markdown.matchAll(/^```(?:ts|typescript)\n([\s\S]*?)^```$/gm)) {
  const line = markdown.slice(0, m.index).split('\n').length;
  writeFileSync(join(out, `block-line-${line}.ts`), `${m[1]}\nexport {};\n`);
  count++;
}
if (count === 0) throw new Error(`${markdownFile} has no TypeScript block`);
console.log(`readme-blocks: ${count} TypeScript blocks of ${markdownFile} in ${out}`);
