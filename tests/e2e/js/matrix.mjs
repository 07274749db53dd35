// The AWS SDK for JavaScript v3 through a bucket's whole life (run by
// tests/e2e/test_client_matrix.py). Env: ENDPOINT, ENDPOINT_TLS, CA,
// KMS_KEY, DIR (a directory with dir/small.txt, dir/big.bin, other.txt).
// Prints "ok" after every check passed; throws (exit 1) otherwise.
import { readFileSync, readdirSync, statSync } from "node:fs";
import { createHash } from "node:crypto";
import { Agent } from "node:https";
import { join, relative } from "node:path";
import {
  S3Client, CreateBucketCommand, PutObjectCommand, GetObjectCommand, HeadObjectCommand,
  ListObjectsV2Command, CopyObjectCommand, DeleteObjectCommand, DeleteBucketCommand, ListBucketsCommand,
} from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import { NodeHttpHandler } from "@smithy/node-http-handler";

const env = process.env;
const credentials = { accessKeyId: env.AWS_ACCESS_KEY_ID, secretAccessKey: env.AWS_SECRET_ACCESS_KEY };
const base = { region: "us-east-1", credentials, forcePathStyle: true };
const s3 = new S3Client({ ...base, endpoint: env.ENDPOINT });
const tls = new S3Client({
  ...base, endpoint: env.ENDPOINT_TLS,
  requestHandler: new NodeHttpHandler({ httpsAgent: new Agent({ ca: readFileSync(env.CA) }) }),
});
const B = "matrix-js";
const MIB = 1024 * 1024;
const dir = env.DIR;
const small = readFileSync(join(dir, "dir/small.txt"));
const big = readFileSync(join(dir, "dir/big.bin"));

function check(cond, what) {
  if (!cond) throw new Error(`failed: ${what}`);
}
const bytes = async (r) => Buffer.from(await r.Body.transformToByteArray());
const same = (a, b) => Buffer.compare(a, b) === 0;

await s3.send(new CreateBucketCommand({ Bucket: B }));
await s3.send(new PutObjectCommand({ Bucket: B, Key: "dir/small.txt", Body: small }));
await new Upload({ client: s3, params: { Bucket: B, Key: "dir/big.bin", Body: big }, partSize: 5 * MIB }).done();
check((await s3.send(new HeadObjectCommand({ Bucket: B, Key: "dir/big.bin" }))).ETag.includes("-"), "multipart");
await s3.send(new PutObjectCommand({ Bucket: B, Key: "dir/sub/deep.txt", Body: "deep" }));
const l = await s3.send(new ListObjectsV2Command({ Bucket: B, Prefix: "dir/", Delimiter: "/" }));
check(JSON.stringify(l.Contents.map((o) => o.Key)) === JSON.stringify(["dir/big.bin", "dir/small.txt"]), "list keys");
check(JSON.stringify(l.CommonPrefixes.map((p) => p.Prefix)) === JSON.stringify(["dir/sub/"]), "list prefixes");
check(same(await bytes(await s3.send(new GetObjectCommand({ Bucket: B, Key: "dir/big.bin" }))), big), "download");
const range = await bytes(await s3.send(new GetObjectCommand({ Bucket: B, Key: "dir/small.txt", Range: "bytes=100-149" })));
check(same(range, small.subarray(100, 150)), "range");
await s3.send(new CopyObjectCommand({ Bucket: B, Key: "copied/small.txt", CopySource: `${B}/dir/small.txt` }));
check((await s3.send(new HeadObjectCommand({ Bucket: B, Key: "copied/small.txt" }))).ContentLength === small.length, "copy");
await s3.send(new PutObjectCommand({
  Bucket: B, Key: "kms/small.txt", Body: small, ServerSideEncryption: "aws:kms", SSEKMSKeyId: env.KMS_KEY,
}));
const hk = await s3.send(new HeadObjectCommand({ Bucket: B, Key: "kms/small.txt" }));
check(hk.ServerSideEncryption === "aws:kms" && hk.SSEKMSKeyId === env.KMS_KEY, "sse-kms");
// SSE-C over HTTPS: single and multipart, read back with the key
const key = Buffer.alloc(32, 7);
const ssec = {
  SSECustomerAlgorithm: "AES256", SSECustomerKey: key.toString("base64"),
  SSECustomerKeyMD5: createHash("md5").update(key).digest("base64"),
};
await tls.send(new PutObjectCommand({ Bucket: B, Key: "ssec/small.txt", Body: small, ...ssec }));
await new Upload({ client: tls, params: { Bucket: B, Key: "ssec/big.bin", Body: big, ...ssec }, partSize: 5 * MIB }).done();
check(same(await bytes(await tls.send(new GetObjectCommand({ Bucket: B, Key: "ssec/big.bin", ...ssec }))), big), "sse-c");
const url = await getSignedUrl(s3, new GetObjectCommand({ Bucket: B, Key: "dir/small.txt" }), { expiresIn: 3600 });
check(same(Buffer.from(await (await fetch(url)).arrayBuffer()), small), "presigned");
// no sync in the SDK: a client-side one, by ETag, twice
async function sync() {
  let sent = 0;
  const have = new Map();
  const r = await s3.send(new ListObjectsV2Command({ Bucket: B, Prefix: "sync/" }));
  for (const o of r.Contents ?? []) have.set(o.Key, o.ETag.replaceAll('"', ""));
  const walk = (d) => readdirSync(d).flatMap((n) => (statSync(join(d, n)).isDirectory() ? walk(join(d, n)) : [join(d, n)]));
  for (const p of walk(dir).sort()) {
    const k = "sync/" + relative(dir, p);
    const body = readFileSync(p);
    if (have.get(k) !== createHash("md5").update(body).digest("hex")) {
      await s3.send(new PutObjectCommand({ Bucket: B, Key: k, Body: body }));
      sent += 1;
    }
  }
  return sent;
}
check((await sync()) === 3 && (await sync()) === 0, "sync twice");
let token;
do {
  const r = await s3.send(new ListObjectsV2Command({ Bucket: B, ContinuationToken: token }));
  for (const o of r.Contents ?? []) await s3.send(new DeleteObjectCommand({ Bucket: B, Key: o.Key }));
  token = r.NextContinuationToken;
} while (token);
await s3.send(new DeleteBucketCommand({ Bucket: B }));
const left = (await s3.send(new ListBucketsCommand({}))).Buckets ?? [];
check(!left.some((b) => b.Name === B), "bucket removed");
console.log("ok");
