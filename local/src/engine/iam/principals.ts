/**
 * Who is calling: every function runs with its own credentials (an access key id that names its
 * role's session, as Lambda gives each function its role's temporary credentials), state machines
 * and custom resource providers call as their roles, and a test may call as any principal. The
 * endpoint reads the access key id from the SigV4 `Authorization` header to know the principal.
 */

export interface Principal {
  /** What AWS names in a denial: `arn:aws:sts::<account>:assumed-role/<role>/<session>`, an administrator's ARN, or a service principal. */
  readonly arn: string;
  /** The role whose identity policies apply (none for service principals and unknown roles). */
  readonly roleArn?: string;
  /** An administrator of the account: AdministratorAccess as its identity policy. */
  readonly admin?: boolean;
  /** `sns.amazonaws.com` and the like: only resource policies can allow it. */
  readonly service?: boolean;
}

export interface Credentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
}

/** What `LocalEngine.awsClientConfig()` hands out. */
export interface AwsClientConfig {
  readonly endpoint: string;
  readonly region: string;
  readonly credentials: Credentials;
}

const SECRET = 'local-engine-secret-access-key';

export class PrincipalRegistry {
  public readonly admin: Principal;
  private readonly byKey = new Map<string, Principal>();
  private readonly keyOf = new Map<string, string>();

  constructor(private readonly account: string) {
    this.admin = { arn: `arn:aws:iam::${account}:role/Admin`, admin: true };
    this.register(this.admin, 'AKIALOCALADMIN000000');
  }

  /** A role's session (`arn:aws:sts::<account>:assumed-role/<role>/<session>`). */
  public session(roleArn: string, sessionName: string): Principal {
    const roleName = roleArn.split('/').pop();
    return { arn: `arn:aws:sts::${this.account}:assumed-role/${roleName}/${sessionName}`, roleArn };
  }

  /** `sns.amazonaws.com`, `lambda.amazonaws.com`, ... (deliveries). */
  public service(name: string): Principal {
    return { arn: name, service: true };
  }

  /** The credentials that make the endpoint see `principal`. */
  public credentialsFor(principal: Principal): Credentials {
    let key = this.keyOf.get(principal.arn);
    if (!key) {
      key = `ASIALOCAL${String(this.keyOf.size).padStart(11, '0')}`;
      this.register(principal, key);
    }
    return { accessKeyId: key, secretAccessKey: SECRET };
  }

  /**
   * The principal of a request's access key id. Keys the engine did not hand out (a test's own
   * client with made-up credentials) are an administrator's, as with the account's own credentials.
   */
  public byAccessKey(accessKeyId: string | undefined): Principal {
    return (accessKeyId && this.byKey.get(accessKeyId)) || this.admin;
  }

  private register(principal: Principal, key: string) {
    this.byKey.set(key, principal);
    this.keyOf.set(principal.arn, key);
  }
}

/** The access key id of a SigV4-signed request (`Authorization: AWS4-HMAC-SHA256 Credential=AKID/...`). */
export function accessKeyOf(authorization: string | string[] | undefined): string | undefined {
  const header = Array.isArray(authorization) ? authorization[0] : authorization;
  return header ? /Credential=([^/,\s]+)\//.exec(header)?.[1] : undefined;
}
