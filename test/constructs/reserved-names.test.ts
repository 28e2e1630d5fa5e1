// Names of Object.prototype members (`__proto__`, `constructor`, `toString`, ...) fit the name pattern
// [A-Za-z0-9_-], but activity and plugin names are keys the handlers look up in plain objects, where
// these names reach the prototype instead of data. They fail at synth time, naming the value, the
// reserved names and what is allowed; the handlers refuse them too (test/handlers/fuzz.test.ts).
import { App, Stack } from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { Activity, ActivityStage, Orchestrator, Workflow } from '../../src';

const RESERVED = '__defineGetter__, __defineSetter__, __lookupGetter__, __lookupSetter__, __proto__, constructor, hasOwnProperty, '
  + 'isPrototypeOf, propertyIsEnumerable, prototype, toLocaleString, toString, valueOf';
const ALLOWED = 'letters A-Z a-z, digits 0-9, hyphen (-) and underscore (_)';
const NAMES = ['__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf', 'prototype'];

const newStack = () => new Stack(new App(), 'TestStack');

function reservedError(where: string, what: string, name: string): string {
  return `${where}: ${what} ${JSON.stringify(name)} is reserved: names of JavaScript Object.prototype members (${RESERVED}) `
    + `would be taken for the prototype where the handlers look names up; use another name of 1-64 characters from ${ALLOWED}`;
}

test.each(NAMES)('an Orchestrator activity named %j fails at synth', (name) => {
  expect(() => new Orchestrator(newStack(), 'Orch', { activities: ['Step1', name], orchestratorName: 'orders' }))
    .toThrow(reservedError("Orchestrator 'TestStack/Orch'", 'activity name', name));
});

test.each(NAMES)('addPlugin with pluginName %j fails at synth', (name) => {
  const stack = newStack();
  const orch = new Orchestrator(stack, 'Orch', { activities: ['Step1'], orchestratorName: 'orders' });
  const fn = new lambda.Function(stack, 'Fn', {
    runtime: lambda.Runtime.NODEJS_22_X, handler: 'index.handler', code: lambda.Code.fromInline('exports.handler = async () => ({});'),
  });
  for (const stage of [ActivityStage.PRE, ActivityStage.PARALLEL]) {
    expect(() => orch.activity('Step1').addPlugin(fn, { stage, pluginName: name }))
      .toThrow(reservedError(`Activity 'TestStack/Orch/Activities/Step1': addPlugin ${JSON.stringify(name)}`, 'pluginName', name));
  }
});

test('an imported activity with a reserved name fails at synth', () => {
  expect(() => Activity.fromActivityAttributes(newStack(), 'X', {
    activityName: 'constructor', stateMachineArn: 'a', preTopicArn: 'b', parallelTopicArn: 'c', postTopicArn: 'd',
  })).toThrow(reservedError("Activity 'TestStack/X'", 'activity name', 'constructor'));
});

test('a workflowName that is reserved fails at synth like any other name', () => {
  const stack = newStack();
  const orch = new Orchestrator(stack, 'Orch', { activities: ['Step1'], orchestratorName: 'orders' });
  expect(() => new Workflow(stack, 'Flow', { orchestrator: orch, activities: ['Step1'], workflowName: 'toString' }))
    .toThrow(reservedError("Workflow 'TestStack/Flow'", 'workflowName', 'toString'));
});

test('names that merely contain a reserved word are fine', () => {
  const stack = newStack();
  const orch = new Orchestrator(stack, 'Orch', { activities: ['constructor2', 'my_toString', 'Prototype'], orchestratorName: 'orders' });
  const fn = new lambda.Function(stack, 'Fn', {
    runtime: lambda.Runtime.NODEJS_22_X, handler: 'index.handler', code: lambda.Code.fromInline('exports.handler = async () => ({});'),
  });
  expect(() => orch.activity('constructor2').addPlugin(fn, { stage: ActivityStage.POST, pluginName: 'valueOf-check' })).not.toThrow();
  expect(orch.activity('Prototype').activityName).toBe('Prototype');
});
