/** The CLI's output, kept: `main(argv, io)` writes to `out` and `err`. */
export function captureIo() {
  const out: string[] = [];
  const err: string[] = [];
  return { io: { out: (t: string) => { out.push(t); }, err: (t: string) => { err.push(t); } }, out, err };
}
