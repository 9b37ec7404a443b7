import type { TestProject } from 'vitest/node';
import { startMoto } from '../../local/moto';

declare module 'vitest' {
  export interface ProvidedContext {
    motoEndpoint: string;
  }
}

/**
 * One moto server for the whole run, on a free loopback port. Teardown stops it whether the
 * tests passed or failed; startMoto also kills it if the process dies first.
 */
export default async function setup(project: TestProject) {
  const moto = await startMoto();
  project.provide('motoEndpoint', moto.endpoint);
  return async () => {
    await moto.stop();
  };
}
