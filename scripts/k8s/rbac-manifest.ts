/** Writes manifests/fleetwarden-rbac.yaml from lib/kubernetes/rbac.ts: `npx tsx scripts/k8s/rbac-manifest.ts`. */
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { rbacManifest } from '../../lib/kubernetes/rbac';
import { PROJECT_ROOT } from '../../lib/paths';

const file = path.join(PROJECT_ROOT, 'manifests', 'fleetwarden-rbac.yaml');
writeFileSync(file, rbacManifest());
console.log(`written ${path.relative(PROJECT_ROOT, file)}`);
