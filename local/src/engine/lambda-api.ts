/**
 * Lambda's control-plane API, the part a plugin team uses against the engine (REST JSON):
 * CreateFunction (a zip package), UpdateFunctionCode, GetFunction, TagResource / UntagResource /
 * ListTags. Functions created or updated here run like the app's (LambdaService), and each
 * successful change is recorded by CloudTrail with Lambda's versioned event names.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import type { LocalFunction } from './assembly';
import { AwsError } from './aws-endpoint';
import { ApiCaller, ApiCallRecord, LAMBDA_EVENT_NAMES } from './cloudtrail';
import { functionNameOf } from './intrinsics';
import type { LambdaService } from './lambda-service';
import { extractZip, InvalidZipError } from './zip';

export interface LambdaRestRequest {
  readonly method: string;
  /** Path and query string, as received. */
  readonly url: string;
  readonly body: string;
}

export interface LambdaRestResponse { readonly status: number; readonly body?: unknown }

/** A control-plane request, parsed: the operation, the function it names (name or ARN), its body. */
export interface LambdaControlRequest {
  readonly operation: 'CreateFunction' | 'UpdateFunctionCode' | 'GetFunction' | 'TagResource' | 'ListTags' | 'UntagResource';
  readonly functionName: string;
  readonly body: any;
  readonly url: URL;
}

export interface LambdaApiOptions {
  readonly region: string;
  readonly account: string;
  readonly lambda: LambdaService;
  /** Where uploaded packages are unpacked. */
  readonly tempRoot: string;
  readonly record: (call: Omit<ApiCallRecord, 'service'>) => void;
  /** Told of a function's execution role (when created) and its tags (when created or re-tagged), for authorization. */
  readonly onFunctionConfigured?: (fn: LocalFunction, change: { readonly role?: string; readonly tags: Record<string, string> }) => void;
  /** Whether the engine's `plugins` option maps this function name to local code (then no package is needed). */
  readonly hasLocalCode: (functionName: string) => boolean;
}

/** The paths this API serves (Invoke has its own route in the endpoint). */
export const LAMBDA_CONTROL_PATH = /^\/(2015-03-31\/functions|2017-03-31\/tags\/)/;

export class LambdaApi {
  /**
   * Which operation a request is, on which function: what the endpoint authorizes before the
   * request runs (`lambda:<operation>` on the function; CreateFunction also `iam:PassRole`).
   */
  public static parse(request: LambdaRestRequest): LambdaControlRequest {
    const url = new URL(request.url, 'http://local');
    const path = decodeURIComponent(url.pathname);
    const body = request.body.length ? JSON.parse(request.body) : {};
    const of = (operation: LambdaControlRequest['operation'], functionName: string) => ({ operation, functionName, body, url });
    if (request.method === 'POST' && path === '/2015-03-31/functions') return of('CreateFunction', String(body.FunctionName ?? ''));
    const code = /^\/2015-03-31\/functions\/([^/]+)\/code$/.exec(path);
    if (code && request.method === 'PUT') return of('UpdateFunctionCode', code[1]);
    const get = /^\/2015-03-31\/functions\/([^/]+)$/.exec(path);
    if (get && request.method === 'GET') return of('GetFunction', get[1]);
    const tags = /^\/2017-03-31\/tags\/(.+)$/.exec(path);
    if (tags && request.method === 'POST') return of('TagResource', tags[1]);
    if (tags && request.method === 'GET') return of('ListTags', tags[1]);
    if (tags && request.method === 'DELETE') return of('UntagResource', tags[1]);
    throw new AwsError('UnknownOperationException', `The local engine does not emulate Lambda ${request.method} ${path}`);
  }

  private readonly tags = new Map<string, Record<string, string>>();
  private readonly codeSha = new Map<string, { sha: string; size: number }>();

  constructor(private readonly options: LambdaApiOptions) {}

  /** A function's tags (the template's, then TagResource / UntagResource). */
  public tagsOf(nameOrArn: string): Record<string, string> {
    const fn = this.existing(nameOrArn);
    return { ...(this.tags.get(fn.name) ?? fn.tags ?? {}) };
  }

  /** Adds a function deployed by a stack (CloudFormation's CreateFunction, with the template's tags). */
  public async createFromTemplate(fn: LocalFunction, caller: ApiCaller): Promise<void> {
    await this.options.lambda.putFunction(fn);
    this.options.record({
      eventName: LAMBDA_EVENT_NAMES.CreateFunction,
      ...caller,
      requestParameters: {
        functionName: fn.name,
        runtime: fn.runtime,
        handler: fn.handler,
        code: {},
        timeout: fn.timeoutSeconds,
        memorySize: fn.memoryMb,
        publish: false,
        environment: {},
        ...(fn.tags ? { tags: fn.tags } : {}),
      },
      responseElements: this.configuration(fn, true),
    });
  }

  /** Runs a parsed request (`LambdaApi.parse`) made by `caller` (CloudTrail names it). */
  public async handle(request: LambdaControlRequest, caller?: ApiCaller): Promise<LambdaRestResponse> {
    const { operation, functionName, body, url } = request;
    switch (operation) {
      case 'CreateFunction': return { status: 201, body: await this.createFunction(body, caller) };
      case 'UpdateFunctionCode': return { status: 200, body: await this.updateFunctionCode(functionName, body, caller) };
      case 'GetFunction': {
        const fn = this.existing(functionName);
        return { status: 200, body: { Configuration: this.configuration(fn, false), Code: { RepositoryType: 'S3' }, Tags: this.tagsOf(fn.name) } };
      }
      case 'TagResource': return this.tagResource(functionName, body.Tags ?? {}, caller);
      case 'ListTags': return { status: 200, body: { Tags: this.tagsOf(functionName) } };
      case 'UntagResource': {
        const fn = this.existing(functionName);
        const current = this.tagsOf(fn.name);
        for (const key of url.searchParams.getAll('tagKeys')) delete current[key];
        this.tags.set(fn.name, current);
        this.options.onFunctionConfigured?.(fn, { tags: current });
        return { status: 204 };
      }
    }
  }

  private async createFunction(body: any, caller: ApiCaller | undefined): Promise<unknown> {
    const name = required(body, 'FunctionName');
    if (this.options.lambda.functionFor(name)) throw new AwsError('ResourceConflictException', `Function already exist: ${name}`, 409);
    const handler = required(body, 'Handler');
    const runtime = required(body, 'Runtime');
    const fn: LocalFunction = {
      logicalId: name,
      stackName: 'lambda-api',
      name,
      arn: `arn:aws:lambda:${this.options.region}:${this.options.account}:function:${name}`,
      handler,
      runtime,
      // Local code mapped by the `plugins` option runs instead of a package: CreateFunction needs none.
      codeDir: body.Code?.ZipFile === undefined && this.options.hasLocalCode(name) ? undefined : this.unpack(name, body.Code?.ZipFile),
      environment: body.Environment?.Variables ?? {},
      memoryMb: Number(body.MemorySize ?? 128),
      timeoutSeconds: Number(body.Timeout ?? 3),
      tags: body.Tags,
    };
    await this.options.lambda.putFunction(fn);
    this.options.onFunctionConfigured?.(fn, { role: body.Role, tags: body.Tags ?? {} });
    const configuration = this.configuration(fn, false);
    this.options.record({
      ...caller,
      eventName: LAMBDA_EVENT_NAMES.CreateFunction,
      requestParameters: {
        functionName: name,
        runtime,
        role: body.Role,
        handler,
        code: {},
        timeout: fn.timeoutSeconds,
        memorySize: fn.memoryMb,
        publish: Boolean(body.Publish),
        environment: {},
        ...(body.Tags ? { tags: body.Tags } : {}),
      },
      responseElements: camelCase(configuration),
    });
    return configuration;
  }

  private async updateFunctionCode(nameOrArn: string, body: any, caller: ApiCaller | undefined): Promise<unknown> {
    const fn = this.existing(nameOrArn);
    const updated: LocalFunction = { ...fn, codeDir: this.unpack(fn.name, body.ZipFile), inlineCode: undefined };
    if (!body.DryRun) await this.options.lambda.putFunction(updated);
    const configuration = this.configuration(updated, false);
    this.options.record({
      ...caller,
      eventName: LAMBDA_EVENT_NAMES.UpdateFunctionCode,
      requestParameters: { functionName: nameOrArn, publish: Boolean(body.Publish), dryRun: Boolean(body.DryRun) },
      responseElements: camelCase(configuration),
    });
    return configuration;
  }

  private tagResource(arn: string, tags: Record<string, string>, caller: ApiCaller | undefined): LambdaRestResponse {
    const fn = this.existing(arn);
    this.tags.set(fn.name, { ...this.tagsOf(fn.name), ...tags });
    this.options.onFunctionConfigured?.(fn, { tags: this.tagsOf(fn.name) });
    this.options.record({ ...caller, eventName: LAMBDA_EVENT_NAMES.TagResource, requestParameters: { resource: arn, tags }, responseElements: null });
    return { status: 204 };
  }

  private existing(nameOrArn: string): LocalFunction {
    const fn = this.options.lambda.functionFor(functionNameOf(nameOrArn));
    if (!fn) throw new AwsError('ResourceNotFoundException', `Function not found: ${nameOrArn}`, 404);
    return fn;
  }

  /** Unpacks a base64 zip package into a fresh directory (one per upload: old workers keep theirs). */
  private unpack(name: string, zipBase64: unknown): string {
    if (typeof zipBase64 !== 'string') {
      throw new AwsError('InvalidParameterValueException', 'The local engine takes function code as Code.ZipFile (a base64 zip), or from the plugins option '
        + `(map "${name}" to a local module); S3 and image packages are not emulated`);
    }
    const archive = Buffer.from(zipBase64, 'base64');
    const dir = mkdtempSync(join(this.options.tempRoot, `${name}-`));
    try {
      extractZip(archive, dir);
    } catch (e) {
      if (e instanceof InvalidZipError) throw new AwsError('InvalidParameterValueException', e.message);
      throw e;
    }
    this.codeSha.set(name, { sha: createHash('sha256').update(archive).digest('base64'), size: archive.length });
    return dir;
  }

  /** FunctionConfiguration as the API returns it (camelCase in CloudTrail's responseElements). */
  private configuration(fn: LocalFunction, camel: boolean): Record<string, unknown> {
    const code = this.codeSha.get(fn.name);
    const out = {
      FunctionName: fn.name,
      FunctionArn: fn.arn,
      Runtime: fn.runtime,
      Handler: fn.handler,
      CodeSize: code?.size ?? 0,
      CodeSha256: code?.sha ?? '',
      Timeout: fn.timeoutSeconds,
      MemorySize: fn.memoryMb,
      LastModified: new Date().toISOString().replace('Z', '+0000'),
      Version: '$LATEST',
      State: 'Active',
      LastUpdateStatus: 'Successful',
      PackageType: 'Zip',
      Environment: { Variables: fn.environment },
    };
    return camel ? camelCase(out) : out;
  }
}

function required(body: any, field: string): string {
  const value = body?.[field];
  if (typeof value !== 'string' || !value) throw new AwsError('InvalidParameterValueException', `${field} is required`);
  return value;
}

/** CloudTrail writes Lambda's response elements with lower-case first letters. */
function camelCase(value: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k[0].toLowerCase() + k.slice(1), v]));
}
