import { createElement } from 'lwc';
import TrustLadder from 'c/trustLadder';
import { getRecord } from 'lightning/uiRecordApi';
import { getObjectInfo, getPicklistValues } from 'lightning/uiObjectInfoApi';

const CONTACT_FRIEND = require('./data/contactFriend.json');
const CONTACT_NEVER_SYNCED = require('./data/contactNeverSynced.json');
const OBJECT_INFO = require('./data/objectInfo.json');
const STAGES = require('./data/stagePicklist.json');
const FLAGS = require('./data/flagsPicklist.json');

const RUNGS = ['Fringe', 'Friend', 'Familiar', 'Faithful', 'Forever'];

/** A copy of the Friend contact with some fields changed (value) or left out (undefined: no read access). */
function contact(changes) {
    const record = JSON.parse(JSON.stringify(CONTACT_FRIEND));
    for (const [name, value] of Object.entries(changes)) {
        if (value === undefined) {
            delete record.fields[name];
        } else {
            record.fields[name] = { displayValue: null, value };
        }
    }
    return record;
}

function picklistFor(fieldApiName) {
    return (config) => config.fieldApiName.fieldApiName === fieldApiName;
}

function flush() {
    return Promise.resolve().then(() => Promise.resolve());
}

/** The component on a record page, after Lightning Data Service answered every wire. */
async function render(record, { stages = STAGES, flags = FLAGS } = {}) {
    const element = createElement('c-trust-ladder', { is: TrustLadder });
    element.recordId = record.id;
    document.body.appendChild(element);
    getRecord.emit(record);
    getObjectInfo.emit(OBJECT_INFO);
    await flush();
    getPicklistValues.emit(stages, picklistFor('Trust_Stage__c'));
    getPicklistValues.emit(flags, picklistFor('Trust_Flags__c'));
    await flush();
    return element;
}

function $(element, selector) {
    return element.shadowRoot.querySelector(selector);
}

function $$(element, selector) {
    return Array.from(element.shadowRoot.querySelectorAll(selector));
}

function text(element, selector) {
    const found = $(element, selector);
    return found ? found.textContent.replace(/\s+/g, ' ').trim() : null;
}

describe('c-trust-ladder', () => {
    afterEach(() => {
        while (document.body.firstChild) {
            document.body.removeChild(document.body.firstChild);
        }
        jest.clearAllMocks();
    });

    it('asks Lightning Data Service for the six fields as optional fields, so field-level security hides them', async () => {
        await render(CONTACT_FRIEND);
        const config = getRecord.getLastConfig();
        expect(config.recordId).toBe('003000000000001AAA');
        expect(config.fields).toBeUndefined();
        expect(config.optionalFields.map((f) => f.fieldApiName).sort()).toEqual([
            'Trust_Flags__c',
            'Trust_Next_Step__c',
            'Trust_Reason__c',
            'Trust_Rules_Version__c',
            'Trust_Stage_Since__c',
            'Trust_Stage__c'
        ]);
    });

    it("takes the rung names from the stage picklist of the contact's record type", async () => {
        const renamed = {
            ...STAGES,
            values: [
                { attributes: null, label: 'Stranger', validFor: [], value: 'Stranger' },
                { attributes: null, label: 'Friend', validFor: [], value: 'Friend' },
                { attributes: null, label: 'Confidant', validFor: [], value: 'Confidant' }
            ]
        };
        const element = await render(CONTACT_FRIEND, { stages: renamed });
        expect(getPicklistValues.getLastConfig().recordTypeId).toBe('012000000000000AAA');
        expect($$(element, 'lightning-progress-step').map((s) => s.label)).toEqual(['Stranger', 'Friend', 'Confidant']);
    });

    it("falls back to the object's default record type when the contact has none", async () => {
        const record = contact({});
        record.recordTypeId = null;
        const element = createElement('c-trust-ladder', { is: TrustLadder });
        element.recordId = record.id;
        document.body.appendChild(element);
        getRecord.emit(record);
        getObjectInfo.emit({ ...OBJECT_INFO, defaultRecordTypeId: '012000000000099AAA' });
        await flush();
        expect(getPicklistValues.getLastConfig().recordTypeId).toBe('012000000000099AAA');
    });

    it('shows a spinner until the record arrives', async () => {
        const element = createElement('c-trust-ladder', { is: TrustLadder });
        element.recordId = '003000000000001AAA';
        document.body.appendChild(element);
        await flush();
        expect($(element, 'lightning-spinner')).not.toBeNull();
        expect($(element, 'lightning-progress-indicator')).toBeNull();
    });

    it.each(RUNGS)('marks %s as the current rung of the path', async (rung) => {
        const element = await render(contact({ Trust_Stage__c: rung }));
        const path = $(element, 'lightning-progress-indicator');
        expect(path.type).toBe('path');
        expect(path.currentStep).toBe(rung);
        expect($$(element, 'lightning-progress-step').map((s) => s.value)).toEqual(RUNGS);
        expect(text(element, '.trust-rung')).toBe(rung);
        expect(text(element, '.trust-since-word')).toBe('since');
        expect($(element, '.trust-never-synced')).toBeNull();
        expect($(element, '.trust-off-path')).toBeNull();
    });

    it('says since when, as a date that does not shift with the time zone', async () => {
        const element = await render(CONTACT_FRIEND);
        const since = $(element, '.trust-since lightning-formatted-date-time');
        expect(since.value).toBe('2025-08-14');
        expect(since.timeZone).toBe('UTC');
    });

    it('shows the next step, the reason and the rules version', async () => {
        const element = await render(CONTACT_FRIEND);
        expect(text(element, '.trust-next-step')).toBe('Send a thank-you for the feedback call on 2 Oct');
        expect($(element, '.trust-reason').textContent).toContain('Familiar still needs: 3 conversations');
        expect(text(element, '.trust-rules-version')).toBe('Placed by rules ladder@3f9c2a1b');
        const labels = $$(element, '.slds-form-element__label').map((l) => l.textContent);
        expect(labels).toEqual(['Open trust flags', 'Next step', 'Why this rung']); // the org's field labels
    });

    it('shows each open flag as a badge', async () => {
        const element = await render(CONTACT_FRIEND);
        const badges = $$(element, 'lightning-badge.trust-flag');
        expect(badges.map((b) => b.label)).toEqual(['Missing thank-you', 'Missing listening']);
        expect($(element, '.trust-no-flags')).toBeNull();
    });

    it('shows a flag with its picklist label', async () => {
        const translated = {
            ...FLAGS,
            values: [{ attributes: null, label: 'Merci manquant', validFor: [], value: 'Missing thank-you' }]
        };
        const element = await render(contact({ Trust_Flags__c: 'Missing thank-you' }), { flags: translated });
        expect($$(element, 'lightning-badge').map((b) => b.label)).toEqual(['Merci manquant']);
    });

    it('says no flag is open when there is none', async () => {
        const element = await render(contact({ Trust_Flags__c: null, Trust_Next_Step__c: null }));
        expect($$(element, 'lightning-badge')).toEqual([]);
        expect(text(element, '.trust-no-flags')).toBe('none open');
        expect($(element, '.trust-next-step')).toBeNull();
    });

    it('explains that the next sync will place a contact never synced', async () => {
        const element = await render(CONTACT_NEVER_SYNCED);
        expect(text(element, '.trust-never-synced')).toContain('The next trust-ladder sync will place this contact');
        expect($(element, 'lightning-progress-indicator').currentStep).toBeUndefined();
        expect($(element, '.trust-stage')).toBeNull();
        expect($(element, '.trust-since')).toBeNull();
        expect($(element, '.trust-next-step')).toBeNull();
        expect($(element, '.trust-rules-version')).toBeNull();
    });

    it('hides a field that field-level security hides, and shows the rest', async () => {
        const element = await render(contact({ Trust_Reason__c: undefined, Trust_Flags__c: undefined }));
        expect($(element, '.trust-reason')).toBeNull();
        expect($(element, '.trust-flags')).toBeNull();
        expect($$(element, 'lightning-badge')).toEqual([]);
        expect(text(element, '.trust-next-step')).toBe('Send a thank-you for the feedback call on 2 Oct');
        expect($(element, 'lightning-progress-indicator').currentStep).toBe('Friend');
    });

    it('hides the path when the stage itself is hidden, without claiming the contact was never synced', async () => {
        const element = await render(contact({ Trust_Stage__c: undefined, Trust_Stage_Since__c: undefined }));
        expect($(element, 'lightning-progress-indicator')).toBeNull();
        expect($(element, '.trust-stage')).toBeNull();
        expect($(element, '.trust-never-synced')).toBeNull();
        expect($$(element, 'lightning-badge')).toHaveLength(2);
    });

    it('says once that nothing is readable when every trust field is hidden', async () => {
        const hidden = Object.fromEntries(Object.keys(CONTACT_FRIEND.fields).map((name) => [name, undefined]));
        const element = await render(contact(hidden));
        expect(text(element, '.trust-no-access')).toContain('permission set Trust Ladder Read');
        expect($(element, 'lightning-progress-indicator')).toBeNull();
        expect($(element, '.trust-never-synced')).toBeNull();
    });

    it('says that the rung is off the path when the picklist does not offer it', async () => {
        const element = await render(contact({ Trust_Stage__c: 'Acquaintance' }));
        expect(text(element, '.trust-rung')).toBe('Acquaintance');
        expect(text(element, '.trust-off-path')).toContain('trust-ladder fields check');
    });

    it('still shows the rung as text when the picklist values cannot be read', async () => {
        const element = createElement('c-trust-ladder', { is: TrustLadder });
        element.recordId = CONTACT_FRIEND.id;
        document.body.appendChild(element);
        getRecord.emit(CONTACT_FRIEND);
        getObjectInfo.emit(OBJECT_INFO);
        await flush();
        getPicklistValues.emitError({ body: { message: 'no access' }, status: 403 });
        await flush();
        expect($(element, 'lightning-progress-indicator')).toBeNull();
        expect(text(element, '.trust-rung')).toBe('Friend');
    });

    it('reports a data load error instead of an empty card', async () => {
        const element = createElement('c-trust-ladder', { is: TrustLadder });
        element.recordId = '003000000000001AAA';
        document.body.appendChild(element);
        getRecord.emitError({ body: { message: 'The requested resource does not exist' }, status: 404 });
        await flush();
        expect(text(element, '.trust-error')).toBe(
            'The trust ladder could not be loaded: The requested resource does not exist'
        );
        expect($(element, 'lightning-spinner')).toBeNull();
        expect($(element, 'lightning-progress-indicator')).toBeNull();
    });

    it('joins the messages of an error whose body is a list', async () => {
        const element = createElement('c-trust-ladder', { is: TrustLadder });
        element.recordId = '003000000000001AAA';
        document.body.appendChild(element);
        getRecord.emitError({ body: [{ message: 'First.' }, { message: 'Second.' }], status: 400 });
        await flush();
        expect(text(element, '.trust-error')).toBe('The trust ladder could not be loaded: First. Second.');
    });

    it('titles the card so a page layout shows what it is', async () => {
        const element = await render(CONTACT_FRIEND);
        expect($(element, 'lightning-card').title).toBe('Trust ladder');
        expect($(element, 'lightning-spinner')).toBeNull();
    });
});
