// Type-aware lint for the whole project; the rules that catch real bugs in Pulumi programs
// (floating promises, misused Outputs in template strings) need type information.
import js from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["node_modules/**", "**/*.js", "**/*.mjs", "dist/**", "examples/consumer/**"] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      "@typescript-eslint/no-floating-promises": "error",
      "@typescript-eslint/restrict-template-expressions": ["error", { allowNumber: true }],
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      // Dynamic provider methods must return promises even when they do no I/O.
      "@typescript-eslint/require-await": "off",
    },
  },
  {
    // Asymmetric matchers (expect.stringMatching, ...) are typed `any` by vitest.
    files: ["tests/**/*.ts"],
    rules: { "@typescript-eslint/no-unsafe-assignment": "off" },
  },
);
