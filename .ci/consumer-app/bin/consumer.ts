#!/usr/bin/env node
import * as cdk from 'aws-cdk-lib/core';
import { OrchestratorStack } from '../lib/orchestrator-stack';
import { PluginStack } from '../lib/plugin-stack';

const app = new cdk.App();
const core = new OrchestratorStack(app, 'ConsumerOrchestrator');
new PluginStack(app, 'ConsumerPlugins', { orchestrator: core.orchestrator });
