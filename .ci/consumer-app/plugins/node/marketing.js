// Optional PARALLEL plugin (Node.js) that always fails: its stage ends `Optional Task Error`.
exports.handler = async () => {
  throw new Error('marketing service unavailable');
};
