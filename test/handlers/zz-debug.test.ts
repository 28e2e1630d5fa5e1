import { DescribeStreamCommand, DynamoDBStreamsClient, GetRecordsCommand, GetShardIteratorCommand } from '@aws-sdk/client-dynamodb-streams';
import { Harness } from '../support/harness';
test('debug', async () => {
  const h = await Harness.create('dbg');
  const c = (h.stream as any).client as DynamoDBStreamsClient;
  const arn = h.stream.streamArn;
  const shards = async () => (await c.send(new DescribeStreamCommand({ StreamArn: arn }))).StreamDescription!.Shards!;
  console.log(JSON.stringify(await shards()));
  const it = (await c.send(new GetShardIteratorCommand({ StreamArn: arn, ShardId: (await shards())[0].ShardId!, ShardIteratorType: 'TRIM_HORIZON' }))).ShardIterator!;
  try { const r = await c.send(new GetRecordsCommand({ ShardIterator: it })); console.log('ok', r.Records!.length); } catch (e) { console.log('ERR', (e as Error).name, (e as Error).message); }
  await h.handlers.startRun({ input: { uid: 'x' }, workflow: 'W', activities: ['A'] });
  console.log(JSON.stringify(await shards()));
  const it2 = (await c.send(new GetShardIteratorCommand({ StreamArn: arn, ShardId: (await shards())[0].ShardId!, ShardIteratorType: 'TRIM_HORIZON' }))).ShardIterator!;
  try { const r = await c.send(new GetRecordsCommand({ ShardIterator: it2 })); console.log('ok', r.Records!.length); } catch (e) { console.log('ERR', (e as Error).name); }
  await h.close();
});
