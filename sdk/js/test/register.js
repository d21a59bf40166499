// `node --import ./sdk/js/test/register.js ...`: resolves `weir:plugin/host@0.3.0` to
// host-stub.js, so that the SDK and plugin code run under Node for unit tests.
import { register } from 'node:module';

const stub = new URL('./host-stub.js', import.meta.url).href;
register(
  `data:text/javascript,${encodeURIComponent(`
    export async function resolve(specifier, context, next) {
      if (specifier.startsWith('weir:plugin/host')) return { url: ${JSON.stringify(stub)}, shortCircuit: true };
      return next(specifier, context);
    }`)}`,
);
