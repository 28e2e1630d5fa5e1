export * from './activity-stage';
export * from './activity';
export * from './handlers';
export * from './orchestrator';
export * from './plugin';
export * from './workflow';
