// The official Yandex Cloud Node.js SDK (@yandex-cloud/nodejs-sdk) against an imageplane
// server over TLS, used as a drop-in for Yandex Cloud: discover the endpoints, create a
// compute image (a copy of the latest public Ubuntu) and a bare-metal image (imported from
// a URI), wait for each operation with the SDK's own waitForOperation, read each image
// back. Prints one line `DROPIN-RESULT {json}` on stdout and exits 0; on any failure
// prints `DROPIN-ERROR ...` on stderr and exits 1. Run by ../test_sdk_node.py.
//
//   node dropin.mjs --endpoint localhost:PORT --cert DATA_DIR/tls/cert.pem \
//       (--iam-token TOKEN | --oauth-token TOKEN) --folder FOLDER_ID \
//       --baremetal-uri http://127.0.0.1:PORT/boot.iso [--timeout-ms 60000]
//
// Each option may come from the environment instead: IMAGEPLANE_ENDPOINT,
// IMAGEPLANE_CERT, YC_IAM_TOKEN, YC_OAUTH_TOKEN, YC_FOLDER_ID, IMAGEPLANE_BAREMETAL_URI.
//
// What the SDK (3.2.0, read in node_modules/@yandex-cloud/nodejs-sdk/dist) does, and how
// this script points it at the server:
// * It has no endpoint discovery: `session.client(Client, endpoint)` takes the address,
//   else a static map (dist/service-endpoints-map.json, e.g. compute.api.cloud.yandex.net).
//   This script asks the server's ApiEndpointService.List (unauthenticated, as the Python
//   SDK does) and passes the discovered `compute`, `baremetal`, `operation` addresses.
// * TLS: `new Session({ssl: {rootCerts}})` gives every client's channel
//   credentials.createSsl(rootCerts) plus `authorization: Bearer <IAM token>` on every
//   call (ApiEndpointService's and OperationService's included).
// * `iamToken` is sent as is. `oauthToken` is exchanged before *every* call through
//   IamTokenService.Create({yandexPassportOauthToken}) at the static map's address for
//   yandex.cloud.iam.v1.IamTokenService over credentials.createSsl() with the default roots
//   (no `ssl` option, no custom endpoint). So for --oauth-token this script rewrites that
//   map entry to the discovered `iam` address, and the caller must set
//   GRPC_DEFAULT_SSL_ROOTS_FILE_PATH to the certificate (grpc-js reads it at load time).
// * waitForOperation(op, session, timeoutMs, operationEndpoint) calls OperationService.Get
//   every session.pollInterval ms until done; it rejects with the Operation itself when
//   the operation carries an error.

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { parseArgs } from 'node:util';

import { credentials, status as grpcStatus } from '@grpc/grpc-js';
import { Session, waitForOperation } from '@yandex-cloud/nodejs-sdk';
import { imageService as bmImageService, image as bmImage } from '@yandex-cloud/nodejs-sdk/baremetal-v1alpha';
import { image, imageService } from '@yandex-cloud/nodejs-sdk/compute-v1';
import { apiEndpointService } from '@yandex-cloud/nodejs-sdk/endpoint';
import { iamTokenService } from '@yandex-cloud/nodejs-sdk/iam-v1';

const PUBLIC_FOLDER = 'standard-images';
const PUBLIC_FAMILY = 'ubuntu-2204-lts';
const RPC_TIMEOUT_MS = 10_000;
const TYPE_PREFIX = 'type.googleapis.com/';
const REQUIRED_ENDPOINTS = ['compute', 'baremetal', 'operation', 'iam', 'endpoint'];

class DropinError extends Error {}

function fail(message) {
    throw new DropinError(message);
}

function options() {
    const { values } = parseArgs({
        options: {
            endpoint: { type: 'string', default: process.env.IMAGEPLANE_ENDPOINT },
            cert: { type: 'string', default: process.env.IMAGEPLANE_CERT },
            'iam-token': { type: 'string', default: process.env.YC_IAM_TOKEN },
            'oauth-token': { type: 'string', default: process.env.YC_OAUTH_TOKEN },
            folder: { type: 'string', default: process.env.YC_FOLDER_ID },
            'baremetal-uri': { type: 'string', default: process.env.IMAGEPLANE_BAREMETAL_URI },
            'timeout-ms': { type: 'string', default: '60000' },
        },
        strict: true,
    });
    for (const name of ['endpoint', 'cert', 'folder', 'baremetal-uri']) {
        if (!values[name]) fail(`--${name} is required`);
    }
    if (!values['iam-token'] === !values['oauth-token']) {
        fail('give exactly one of --iam-token and --oauth-token');
    }
    return values;
}

const deadline = () => ({ deadline: new Date(Date.now() + RPC_TIMEOUT_MS) });

// ApiEndpointService.List without credentials on a TLS channel trusting rootCerts only.
function discover(endpoint, rootCerts) {
    const client = new apiEndpointService.ApiEndpointServiceClient(endpoint, credentials.createSsl(rootCerts));
    return new Promise((resolve, reject) => {
        client.list(apiEndpointService.ListApiEndpointsRequest.fromPartial({}), deadline(), (error, response) => {
            client.close();
            if (error) reject(error);
            else resolve(response);
        });
    });
}

// Makes the SDK's OAuth exchange (which reads only the static map) go to `iamAddress`.
function pointOAuthExchangeAt(iamAddress) {
    if (!process.env.GRPC_DEFAULT_SSL_ROOTS_FILE_PATH) {
        fail('--oauth-token needs GRPC_DEFAULT_SSL_ROOTS_FILE_PATH set to the server certificate: '
            + 'the SDK exchanges OAuth tokens over credentials.createSsl() with the default roots');
    }
    const require = createRequire(import.meta.url);
    const dist = path.dirname(require.resolve('@yandex-cloud/nodejs-sdk'));
    const map = require(path.join(dist, 'service-endpoints-map.json'));
    const serviceName = iamTokenService.IamTokenServiceClient.serviceName;
    if (!(serviceName in map)) fail(`the SDK's endpoint map has no ${serviceName}: its layout changed`);
    map[serviceName] = iamAddress;
    const { getServiceClientEndpoint } = require(path.join(dist, 'service-endpoints.js'));
    const used = getServiceClientEndpoint(iamTokenService.IamTokenServiceClient);
    if (used !== iamAddress) fail(`the SDK still exchanges OAuth tokens at ${used}, not ${iamAddress}`);
}

function sdkVersion() {
    const require = createRequire(import.meta.url);
    const dist = path.dirname(require.resolve('@yandex-cloud/nodejs-sdk'));
    return JSON.parse(readFileSync(path.join(dist, '..', 'package.json'), 'utf8')).version;
}

function operationSummary(op) {
    return {
        id: op.id,
        description: op.description,
        createdBy: op.createdBy,
        createdAt: op.createdAt?.toISOString() ?? null,
        done: op.done,
        metadataType: op.metadata?.typeUrl ?? null,
        responseType: op.response?.typeUrl ?? null,
        error: op.error ? { code: op.error.code, message: op.error.message } : null,
    };
}

function unpack(any, type, fullName) {
    if (!any) fail(`no ${fullName} in the operation`);
    if (any.typeUrl !== TYPE_PREFIX + fullName) fail(`type_url ${any.typeUrl} is not ${TYPE_PREFIX + fullName}`);
    return type.decode(any.value);
}

async function wait(op, session, endpoints, timeoutMs) {
    try {
        return await waitForOperation(op, session, timeoutMs, endpoints.operation);
    } catch (error) {
        if (error && error.error && !(error instanceof Error)) {
            fail(`operation ${op.id} failed: code ${error.error.code}: ${error.error.message}`);
        }
        throw error;
    }
}

async function computeImage(session, endpoints, folderId, timeoutMs) {
    const images = session.client(imageService.ImageServiceClient, endpoints.compute);
    const source = await images.getLatestByFamily(imageService.GetImageLatestByFamilyRequest.fromPartial({
        folderId: PUBLIC_FOLDER, family: PUBLIC_FAMILY,
    }), deadline());
    const name = `node-${Date.now().toString(36)}`;
    const op = await images.create(imageService.CreateImageRequest.fromPartial({
        folderId,
        name,
        description: 'through @yandex-cloud/nodejs-sdk',
        labels: { via: 'node-sdk' },
        imageId: source.id,
    }), deadline());
    const metadata = unpack(op.metadata, imageService.CreateImageMetadata, 'yandex.cloud.compute.v1.CreateImageMetadata');
    const done = await wait(op, session, endpoints, timeoutMs);
    const response = unpack(done.response, image.Image, 'yandex.cloud.compute.v1.Image');
    const got = await images.get(imageService.GetImageRequest.fromPartial({ imageId: metadata.imageId }), deadline());
    return {
        name,
        source: image.Image.toJSON(source),
        operation: operationSummary(op),
        done: operationSummary(done),
        metadata: imageService.CreateImageMetadata.toJSON(metadata),
        response: image.Image.toJSON(response),
        get: image.Image.toJSON(got),
    };
}

async function baremetalImage(session, endpoints, folderId, uri, timeoutMs) {
    const images = session.client(bmImageService.ImageServiceClient, endpoints.baremetal);
    const name = `node-bm-${Date.now().toString(36)}`;
    const op = await images.create(bmImageService.CreateImageRequest.fromPartial({
        folderId,
        name,
        description: 'bare metal through @yandex-cloud/nodejs-sdk',
        labels: { via: 'node-sdk' },
        uri,
    }), deadline());
    const metadata = unpack(op.metadata, bmImageService.CreateImageMetadata, 'yandex.cloud.baremetal.v1alpha.CreateImageMetadata');
    const done = await wait(op, session, endpoints, timeoutMs);
    const response = unpack(done.response, bmImage.Image, 'yandex.cloud.baremetal.v1alpha.Image');
    const got = await images.get(bmImageService.GetImageRequest.fromPartial({ imageId: metadata.imageId }), deadline());
    return {
        name,
        operation: operationSummary(op),
        done: operationSummary(done),
        metadata: bmImageService.CreateImageMetadata.toJSON(metadata),
        response: bmImage.Image.toJSON(response),
        get: bmImage.Image.toJSON(got),
    };
}

async function main() {
    const opts = options();
    const timeoutMs = Number(opts['timeout-ms']);
    const watchdog = setTimeout(() => {
        process.stderr.write(`DROPIN-ERROR not finished within ${timeoutMs} ms\n`);
        process.exit(1);
    }, timeoutMs);
    const rootCerts = readFileSync(opts.cert);

    const listed = await discover(opts.endpoint, rootCerts);
    const endpoints = Object.fromEntries(listed.endpoints.map((e) => [e.id, e.address]));
    const missing = REQUIRED_ENDPOINTS.filter((id) => !endpoints[id]);
    if (missing.length) fail(`ApiEndpointService.List has no ${missing.join(', ')}: ${JSON.stringify(endpoints)}`);

    if (opts['oauth-token']) pointOAuthExchangeAt(endpoints.iam);
    const session = new Session({
        ...(opts['oauth-token'] ? { oauthToken: opts['oauth-token'] } : { iamToken: opts['iam-token'] }),
        ssl: { rootCerts },
        pollInterval: 100,
    });

    // The same list through the session: with its bearer token, at the discovered address.
    const viaSession = await session.client(apiEndpointService.ApiEndpointServiceClient, endpoints.endpoint)
        .list(apiEndpointService.ListApiEndpointsRequest.fromPartial({}), deadline());

    const result = {
        sdkVersion: sdkVersion(),
        endpoints,
        endpointsViaSession: Object.fromEntries(viaSession.endpoints.map((e) => [e.id, e.address])),
        compute: await computeImage(session, endpoints, opts.folder, timeoutMs),
        baremetal: await baremetalImage(session, endpoints, opts.folder, opts['baremetal-uri'], timeoutMs),
    };
    clearTimeout(watchdog);
    process.stdout.write(`DROPIN-RESULT ${JSON.stringify(result)}\n`);
}

try {
    await main();
    process.exit(0);
} catch (error) {
    let message;
    if (error instanceof DropinError) {
        message = error.message;
    } else if (error && typeof error.code === 'number' && error.code in grpcStatus) {
        // nice-grpc ClientError / the SDK's ApiError, or a grpc-js ServiceError
        message = `${grpcStatus[error.code]}: ${error.details ?? error.message}\n${error.stack ?? ''}`;
    } else if (error instanceof Error) {
        // the SDK's ApiError keeps the message ("/Service/Method STATUS: details") and stack
        message = `${error.message}\n${error.stack ?? ''}`;
    } else {
        message = JSON.stringify(error) ?? String(error);
    }
    process.stderr.write(`DROPIN-ERROR ${message}\n`);
    process.exit(1);
}
