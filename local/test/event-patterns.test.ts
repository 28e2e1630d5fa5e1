/**
 * The EventBridge pattern language as the engine's rules use it (the shared matcher in
 * lambda/shared/filter-policy.ts), on the examples of AWS's "Amazon EventBridge event patterns"
 * and "Content filtering" documentation, plus the rules this project synthesizes.
 */
import { matchesPattern } from '../../lambda/shared/filter-policy';

/** AWS's sample EC2 state-change event, used throughout the pattern documentation. */
const ec2Event = {
  'version': '0',
  'id': '6a7e8feb-b491-4cf7-a9f1-bf3703467718',
  'detail-type': 'EC2 Instance State-change Notification',
  'source': 'aws.ec2',
  'account': '111122223333',
  'time': '2017-12-22T18:43:48Z',
  'region': 'us-west-1',
  'resources': ['arn:aws:ec2:us-west-1:123456789012:instance/i-1234567890abcdef0'],
  'detail': {
    'instance-id': 'i-1234567890abcdef0',
    'state': 'terminated',
    'c-count': 5,
    'd-count': 3,
    'x-limit': 301.8,
    'source-ip': '10.0.0.123',
  },
};

describe('EventBridge event patterns (AWS documentation examples)', () => {
  test.each([
    ['exact values, OR within an array', { 'source': ['aws.ec2'], 'detail-type': ['EC2 Instance State-change Notification'] }, true],
    ['a value not listed', { source: ['aws.s3'] }, false],
    ['nested fields', { detail: { state: ['running', 'terminated'] } }, true],
    ['a missing field does not match', { detail: { nothere: ['x'] } }, false],
    ['prefix', { time: [{ prefix: '2017-12-22' }] }, true],
    ['prefix, ignoring case', { detail: { state: [{ prefix: { 'equals-ignore-case': 'TERM' } }] } }, true],
    ['suffix', { detail: { 'instance-id': [{ suffix: 'def0' }] } }, true],
    ['anything-but a value', { detail: { state: [{ 'anything-but': 'initializing' }] } }, true],
    ['anything-but the value it has', { detail: { state: [{ 'anything-but': ['stopped', 'terminated'] }] } }, false],
    ['anything-but a prefix', { detail: { state: [{ 'anything-but': { prefix: 'init' } }] } }, true],
    ['numeric range', { detail: { 'c-count': [{ numeric: ['>', 0, '<=', 5] }], 'x-limit': [{ numeric: ['<', 302] }] } }, true],
    ['numeric out of range', { detail: { 'd-count': [{ numeric: ['<', 3] }] } }, false],
    ['numeric never matches a string', { detail: { state: [{ numeric: ['>', 0] }] } }, false],
    ['exists: true', { detail: { state: [{ exists: true }] } }, true],
    ['exists: false on a present field', { detail: { state: [{ exists: false }] } }, false],
    ['exists: false on a missing field', { detail: { 'error-code': [{ exists: false }] } }, true],
    ['equals-ignore-case', { 'detail-type': [{ 'equals-ignore-case': 'ec2 instance state-change notification' }] }, true],
    ['wildcard', { resources: [{ wildcard: 'arn:aws:ec2:*:*:instance/*' }] }, true],
    ['wildcard that does not match', { resources: [{ wildcard: 'arn:aws:s3:::*' }] }, false],
    ['an array field matches when any element matches', { resources: ['arn:aws:ec2:us-west-1:123456789012:instance/i-1234567890abcdef0'] }, true],
    ['$or: one alternative matches', { detail: { $or: [{ 'c-count': [{ numeric: ['>', 10] }] }, { 'd-count': [{ numeric: ['<', 10] }] }] } }, true],
    ['$or: no alternative matches', { detail: { $or: [{ 'c-count': [{ numeric: ['>', 10] }] }, { 'x-limit': [{ numeric: ['=', 1] }] }] } }, false],
  ])('%s', (_, pattern, expected) => {
    expect(matchesPattern(pattern, ec2Event)).toBe(expected);
  });

  test('an empty pattern object matches every event; an invalid condition is a named error', () => {
    expect(matchesPattern({}, ec2Event)).toBe(true);
    expect(() => matchesPattern({ detail: { state: [{ between: [1, 2] }] } }, ec2Event)).toThrow(/Unsupported filter condition/);
  });
});
