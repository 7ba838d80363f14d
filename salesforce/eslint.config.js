// Salesforce's recommended LWC rules for the component, plus jest's for its tests.
const lwcConfig = require('@salesforce/eslint-config-lwc');
const jestPlugin = require('eslint-plugin-jest');
const globals = require('globals');

module.exports = [
    { ignores: ['node_modules/**', 'mdapi-out/**', '.sfdx/**', '.sf/**'] },
    ...lwcConfig.configs.recommended,
    {
        files: ['**/__tests__/**/*.js'],
        ...jestPlugin.configs['flat/recommended'],
        languageOptions: { globals: { ...globals.node, ...globals.jest } },
        rules: {
            ...jestPlugin.configs['flat/recommended'].rules,
            // Tests feed the component by calling emit() on sfdx-lwc-jest's stub adapters, outside any @wire.
            '@lwc/lwc/no-unexpected-wire-adapter-usages': 'off'
        }
    },
    {
        files: ['*.config.js', 'scripts/**/*.js'],
        languageOptions: { sourceType: 'script', globals: { ...globals.node } }
    }
];
