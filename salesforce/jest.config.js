const { jestConfig } = require('@salesforce/sfdx-lwc-jest/config');

module.exports = {
    ...jestConfig,
    // The tests run offline: every wire adapter is sfdx-lwc-jest's stub, fed from __tests__/data.
    modulePathIgnorePatterns: ['<rootDir>/.localdevserver', '<rootDir>/mdapi-out'],
    testPathIgnorePatterns: ['<rootDir>/node_modules/']
};
