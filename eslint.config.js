import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/', 'cdk.out/', '.venv/', '.venv-*/', 'bench/results/', '.cache/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-console': 'off',
    },
  },
  {
    // Lambda code: keep zod tree-shakeable in the esbuild bundles (README, Performance). zod's `z`
    // binding (`import { z }`, and the default import) is its whole namespace as one object, which
    // esbuild cannot shake: every locale and the JSON Schema code, about 350 KB in each bundle.
    // Powertools parser's schemas import zod that way themselves (functions/shared/sqs.ts has the
    // SQS one); its types are fine.
    files: ['functions/**/*.ts'],
    rules: {
      'no-restricted-syntax': [
        'error',
        {
          selector: "ImportDeclaration[source.value='zod'][importKind!='type'] > ImportSpecifier[imported.name='z'][importKind!='type']",
          message: "Use `import * as z from 'zod'`: esbuild cannot tree-shake the `z` binding, which puts all of zod (~350 KB) into every Lambda bundle.",
        },
        {
          selector: "ImportDeclaration[source.value='zod'][importKind!='type'] > ImportDefaultSpecifier",
          message: "Use `import * as z from 'zod'`: esbuild cannot tree-shake zod's default export, which puts all of zod (~350 KB) into every Lambda bundle.",
        },
      ],
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['@aws-lambda-powertools/parser', '@aws-lambda-powertools/parser/*', '!@aws-lambda-powertools/parser/types'],
              allowTypeImports: true,
              message: "Powertools parser's schemas do `import { z } from 'zod'`, which puts all of zod (~350 KB) into the bundle: write the schema with `import * as z from 'zod'` (as functions/shared/sqs.ts does).",
            },
          ],
        },
      ],
    },
  },
  {
    // Plain Node scripts, run as they are (scripts/sdk-literal-keys.mjs, npm's postinstall).
    files: ['**/*.mjs'],
    languageOptions: { globals: { console: 'readonly', process: 'readonly' } },
  },
  {
    // The local harness walks CloudFormation templates and ASL definitions, and tests edit event
    // fixtures: untyped JSON by nature.
    files: ['local/**/*.ts', 'test/**/*.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
);
