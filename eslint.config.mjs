// ESLint flat config: typescript-eslint with type information.
//
// - src/ (the published library) gets the strict type-checked set.
// - test/, bench/, demo/, examples/ get the recommended type-checked set.
// - Plain .js/.mjs/.cjs files get ESLint's recommended JS rules, no types.
//
// Type information comes from test/tsconfig.json alone: it extends the root
// tsconfig.json (same compiler options) and includes src/ as well as every
// other TypeScript file, so one TypeScript program serves the whole repo
// (two programs — root + test — would type-check src/ twice for nothing).
import js from "@eslint/js";
import tseslint from "typescript-eslint";

const TS = ["**/*.ts", "**/*.cts", "**/*.mts"];
const JS = ["**/*.js", "**/*.cjs", "**/*.mjs"];

export default tseslint.config(
  {
    ignores: ["dist/", "coverage/", "test-results/", ".tmp/", ".scratch/", "demo/.data/"],
  },
  {
    linterOptions: { reportUnusedDisableDirectives: "error" },
  },

  // ---- TypeScript, everywhere ------------------------------------------------
  {
    files: TS,
    extends: [js.configs.recommended, ...tseslint.configs.recommendedTypeChecked],
    languageOptions: {
      parserOptions: {
        project: ["./test/tsconfig.json"],
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      // A leading underscore marks a deliberately unused binding (a callback
      // parameter kept for its position, a property dropped by a rest copy).
      "@typescript-eslint/no-unused-vars": [
        "error",
        { argsIgnorePattern: "^_", varsIgnorePattern: "^_", caughtErrorsIgnorePattern: "^_", ignoreRestSiblings: true },
      ],
      // `.catch((error) => Promise.reject(error))`-style code passes on what
      // was thrown, whatever it is; wrapping it would change the error.
      "@typescript-eslint/prefer-promise-reject-errors": ["error", { allowThrowingUnknown: true }],
      // verbatimModuleSyntax is on: type-only imports must say so, so that
      // the emitted JavaScript never imports a module only for its types.
      "@typescript-eslint/consistent-type-imports": [
        "error",
        // `typeof import("jose")` types a module that is loaded lazily with import().
        { fixStyle: "inline-type-imports", disallowTypeAnnotations: false },
      ],
      // node:test's test()/describe()/it() return promises the runner tracks
      // itself; awaiting them at the top level of a test file is not needed.
      "@typescript-eslint/no-floating-promises": [
        "error",
        { allowForKnownSafeCalls: [{ from: "package", package: "node:test", name: ["test", "describe", "suite", "it"] }] },
      ],
    },
  },

  // ---- src/: the library ------------------------------------------------------
  {
    files: ["src/**/*.ts"],
    extends: [...tseslint.configs.strictTypeChecked],
    rules: {
      // Numbers in error and log messages are fine; objects, nullish and any
      // values (the "[object Object]"/"undefined" bugs) stay forbidden.
      "@typescript-eslint/restrict-template-expressions": ["error", { allowNumber: true }],
      // Stylistic: `(x) => voidCall(x)` shorthands are not bugs.
      "@typescript-eslint/no-confusing-void-expression": "off",
      // The library validates its inputs at run time although their types
      // say they cannot be wrong (JavaScript callers, JSON config, env):
      // those defensive checks are exactly what this rule calls unnecessary.
      "@typescript-eslint/no-unnecessary-condition": "off",
      // With noUncheckedIndexedAccess, `array[i]!` after a bounds check (the
      // binary heap in util/deadlineQueue.ts, regex groups that matched) is
      // the idiom; a runtime re-check would be dead code.
      "@typescript-eslint/no-non-null-assertion": "off",
    },
  },

  // ---- tests, benchmarks, demo, example -------------------------------------
  {
    files: ["test/**", "bench/**", "demo/**", "examples/**"],
    rules: {
      // Fakes and fixtures implement promise-returning contracts (IOServer
      // service methods, oidc-provider's adapter and hooks, store interfaces)
      // with synchronous bodies: `async` is how they keep the contract.
      "@typescript-eslint/require-await": "off",
    },
  },
  {
    files: ["test/**"],
    rules: {
      // Test fixtures hand out closures typed with method syntax
      // (`close(): Promise<void>`) and tests destructure them; the rule
      // cannot see that nothing there uses `this`.
      "@typescript-eslint/unbound-method": "off",
    },
  },
  {
    // Reads the JSON line a child process printed, untyped. test/package/ is
    // being changed in parallel by other work, so it is not edited here:
    // typing `result` there (one `as`) lets this block go.
    files: ["test/package/package.test.ts"],
    rules: {
      "@typescript-eslint/no-unsafe-assignment": "off",
      "@typescript-eslint/no-unsafe-member-access": "off",
    },
  },
  {
    files: ["**/*.cts"],
    rules: {
      // `import x = require("…")` is how a CommonJS TypeScript file imports
      // (test/types/cjs-consumer.test-d.cts checks exactly that).
      "@typescript-eslint/no-require-imports": ["error", { allowAsImport: true }],
    },
  },

  // ---- plain JavaScript --------------------------------------------------------
  {
    files: JS,
    extends: [js.configs.recommended],
    languageOptions: {
      globals: {
        process: "readonly",
        console: "readonly",
        require: "readonly",
        module: "writable",
        exports: "writable",
        __dirname: "readonly",
        __filename: "readonly",
        setTimeout: "readonly",
        clearTimeout: "readonly",
        URL: "readonly",
        fetch: "readonly",
        AbortSignal: "readonly",
      },
    },
  },
);
