export * from './activity-stage';
export * from './activity-base';
export * from './activity';
export * from './handlers';
export * from './orchestrator-base';
export * from './orchestrator';
export * from './plugin';
export * from './workflow';
