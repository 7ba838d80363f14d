#!/usr/bin/env node
// Converts force-app from source format to Metadata API format with @salesforce/source-deploy-retrieve, the
// library behind `sf project convert source`, and checks the result: every component we ship was recognised
// and written, and nothing that is not metadata (jest tests, their data) slipped into the package.
// Offline: it reads and writes files only. Usage: node scripts/convert-check.js [output dir]
'use strict';

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { ComponentSet, MetadataConverter } = require('@salesforce/source-deploy-retrieve');

const project = path.resolve(__dirname, '..');
// Relative on purpose: the resolver reads types from path segments, so a checkout under a folder named `lwc`
// (or `objects`, `reports`...) would turn the whole project into one bogus component.
const source = 'force-app';

// What salesforce/force-app must hold, by Metadata API type: a new component is added here on purpose.
const EXPECTED = {
    CustomObject: ['Contact'],
    CustomField: [
        'Activity.Trust_Listening__c',
        'Contact.Trust_Flags__c',
        'Contact.Trust_Held_Until__c',
        'Contact.Trust_Next_Step__c',
        'Contact.Trust_Previous_Stage__c',
        'Contact.Trust_Reason__c',
        'Contact.Trust_Rules_Version__c',
        'Contact.Trust_Stage_Since__c',
        'Contact.Trust_Stage__c'
    ],
    ListView: [
        'Contact.Trust_Missing_Listening',
        'Contact.Trust_Missing_Thank_You',
        'Contact.Trust_Moved_Down_This_Month',
        'Contact.Trust_My_Missing_Listening',
        'Contact.Trust_My_Missing_Thank_You',
        'Contact.Trust_Slipping_14_Days'
    ],
    PermissionSet: ['Trust_Ladder_Read', 'Trust_Ladder_Sync'],
    LightningComponentBundle: ['trustLadder'],
    ReportFolder: ['Trust_Ladder'],
    Report: [
        'Trust_Ladder/Trust_Contacts_By_Rung_And_Owner',
        'Trust_Ladder/Trust_Moved_Down_This_Month',
        'Trust_Ladder/Trust_Open_Flags_By_Owner',
        'Trust_Ladder/Trust_Slipping_14_Days'
    ],
    DashboardFolder: ['Trust_Ladder'],
    Dashboard: ['Trust_Ladder/Trust_Ladder']
};

function walk(dir) {
    return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
        const full = path.join(dir, entry.name);
        return entry.isDirectory() ? walk(full) : [full];
    });
}

async function main() {
    const keep = Boolean(process.argv[2]);
    const output = keep ? path.resolve(process.argv[2]) : fs.mkdtempSync(path.join(os.tmpdir(), 'trust-ladder-mdapi-'));
    process.chdir(project);
    const components = ComponentSet.fromSource(source);
    const found = {};
    for (const component of components.getSourceComponents()) {
        (found[component.type.name] = found[component.type.name] || []).push(component.fullName);
        for (const child of component.getChildren()) {
            (found[child.type.name] = found[child.type.name] || []).push(child.fullName);
        }
    }
    const problems = [];
    for (const type of new Set([...Object.keys(EXPECTED), ...Object.keys(found)])) {
        const want = [...(EXPECTED[type] || [])].sort();
        const got = [...new Set(found[type] || [])].sort();
        if (JSON.stringify(want) !== JSON.stringify(got)) {
            problems.push(`${type}: expected ${JSON.stringify(want)}, found ${JSON.stringify(got)}`);
        }
    }

    await new MetadataConverter().convert(components, 'metadata', {
        type: 'directory',
        outputDirectory: output,
        genUniqueDir: false
    });
    const written = walk(output).map((file) => path.relative(output, file));
    if (!written.includes('package.xml')) {
        problems.push('no package.xml was written');
    }
    for (const file of written.filter((f) => f.includes('__tests__') || f.endsWith('.test.js'))) {
        problems.push(`not metadata, yet converted: ${file} (see .forceignore)`);
    }
    for (const file of written.filter((f) => f.endsWith('.xml') || f.endsWith('-meta.xml'))) {
        const text = fs.readFileSync(path.join(output, file), 'utf8');
        if (!text.startsWith('<?xml')) {
            problems.push(`${file} is not an XML document`);
        }
    }

    if (!keep) {
        fs.rmSync(output, { recursive: true, force: true });
    }
    if (problems.length) {
        console.error(`The metadata does not convert cleanly:\n  ${problems.join('\n  ')}`);
        process.exitCode = 1;
        return;
    }
    console.log(
        `Converted ${components.size} components (${written.length} files) to Metadata API format` +
            (keep ? ` in ${output}` : '')
    );
}

main().catch((error) => {
    console.error(`The conversion failed: ${error.message}`);
    process.exitCode = 1;
});
