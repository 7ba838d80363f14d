import { createElement } from 'lwc';
import TrustLadder from 'c/trustLadder';
import { getRecord, createRecord } from 'lightning/uiRecordApi';
import { getObjectInfo, getPicklistValues } from 'lightning/uiObjectInfoApi';

const CONTACT_FRIEND = require('./data/contactFriend.json');
const CONTACT_NEVER_SYNCED = require('./data/contactNeverSynced.json');
// As a sync writes them: tests/journeys/test_card_texts.py checks these three against the engine, field by field.
const CONTACT_HELD = require('./data/contactHeld.json');
const CONTACT_MOVED_DOWN = require('./data/contactMovedDown.json');
const CONTACT_FLAGGED = require('./data/contactFlagged.json');
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

    it('asks Lightning Data Service for the eight fields as optional fields, so field-level security hides them', async () => {
        await render(CONTACT_FRIEND);
        const config = getRecord.getLastConfig();
        expect(config.recordId).toBe('003000000000001AAA');
        expect(config.fields).toBeUndefined();
        expect(config.optionalFields.map((f) => f.fieldApiName).sort()).toEqual([
            'Trust_Flags__c',
            'Trust_Held_Until__c',
            'Trust_Next_Step__c',
            'Trust_Previous_Stage__c',
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
        expect($(element, '.trust-reason').textContent).toBe('Friend: an inbound reply on 2 Oct.');
        $(element, '.trust-reason-more').click();
        await flush();
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
    describe('a held contact (Trust_Held_Until__c set)', () => {
        it('is at risk: it stays on its rung until the date, then drops one rung', async () => {
            const element = await render(CONTACT_HELD);
            expect(text(element, '.trust-rung')).toBe('Familiar');
            const risk = $(element, '.trust-at-risk');
            expect(risk.getAttribute('role')).toBe('status');
            expect(text(element, '.trust-at-risk')).toBe(
                'At risk: stays Familiar until Aug 14, 2026, then drops to Friend, unless the next step happens first.'
            );
            expect(risk.dataset.heldUntil).toBe('2026-08-14');
            expect(text(element, '.trust-next-step')).toBe(
                'To stay Familiar past 14 Aug 2026: book a listening conversation with Bea (last one 17 Mar 2026). ' +
                    'Slipping: a listening conversation in the last 120 days.'
            );
        });

        it('shows the whole of its one-sentence reason, with nothing to expand', async () => {
            const element = await render(CONTACT_HELD);
            expect($(element, '.trust-reason').textContent).toBe(
                'Held at Familiar during the demotion grace period, until 14 Aug 2026; slipping: a ' +
                    'listening conversation in the last 120 days.'
            );
            expect($(element, '.trust-reason-more')).toBeNull();
        });

        it('is not at risk once it has dropped (the field is empty again)', async () => {
            const element = await render(CONTACT_MOVED_DOWN);
            expect($(element, '.trust-at-risk')).toBeNull();
        });

        it('does not name a rung to drop to from the lowest one', async () => {
            const element = await render(contact({ Trust_Stage__c: 'Fringe', Trust_Held_Until__c: '2026-08-14' }));
            expect(text(element, '.trust-at-risk')).toBe(
                'At risk: stays Fringe until Aug 14, 2026, unless the next step happens first.'
            );
        });

        it('has no at-risk state in an org without the field', async () => {
            const element = await render(contact({ Trust_Held_Until__c: undefined }));
            expect($(element, '.trust-at-risk')).toBeNull();
            expect(text(element, '.trust-rung')).toBe('Friend');
        });
    });

    describe('the trend, from Trust_Previous_Stage__c', () => {
        it('says down from the rung before for a contact that dropped', async () => {
            const element = await render(CONTACT_MOVED_DOWN);
            expect(text(element, '.trust-rung')).toBe('Friend');
            expect($(element, '.trust-trend').dataset.trend).toBe('down');
            expect($(element, '.trust-trend lightning-icon').iconName).toBe('utility:arrowdown');
            expect(text(element, '.trust-trend-text')).toBe('down from Familiar');
        });

        it('says up from the rung before for a contact that climbed', async () => {
            const element = await render(CONTACT_HELD);
            expect($(element, '.trust-trend').dataset.trend).toBe('up');
            expect($(element, '.trust-trend lightning-icon').iconName).toBe('utility:arrowup');
            expect(text(element, '.trust-trend-text')).toBe('up from Friend');
        });

        it.each([
            ['no previous rung', null],
            ['no access to the field, or an org without it', undefined],
            ['a rung the picklist does not know', 'Acquaintance']
        ])('says nothing with %s', async (_, previous) => {
            const element = await render(contact({ Trust_Previous_Stage__c: previous }));
            expect($(element, '.trust-trend')).toBeNull();
            expect(text(element, '.trust-rung')).toBe('Friend');
        });
    });

    describe('the action: log what an open flag asks for', () => {
        it('offers one button per open flag, in the order of the flags', async () => {
            const element = await render(CONTACT_FLAGGED);
            expect(text(element, '.trust-next-step')).toBe(
                'Send Cy a thank-you for the feedback of 16 May 2026 ("Feedback on the pilot"): unthanked for over 7 days'
            );
            expect($$(element, 'lightning-button.trust-log').map((b) => b.label)).toEqual([
                'Log the thank-you',
                'Log a listening conversation'
            ]);
        });

        it('logs the thank-you as a completed Task on the contact, and says the next sync clears the flag', async () => {
            jest.useFakeTimers({ now: new Date(2026, 5, 15, 10, 30), doNotFake: ['queueMicrotask'] });
            const element = await render(CONTACT_FLAGGED);
            const toast = jest.fn();
            element.addEventListener('lightning__showtoast', toast); // the event ShowToastEvent fires
            $(element, 'lightning-button.trust-log[data-flag="Missing thank-you"]').click();
            await flush();
            jest.useRealTimers();
            expect(createRecord).toHaveBeenCalledTimes(1);
            expect(createRecord.mock.calls[0][0]).toEqual({
                apiName: 'Task',
                fields: {
                    WhoId: CONTACT_FLAGGED.id,
                    Subject: 'Thank-you sent',
                    Status: 'Completed',
                    ActivityDate: '2026-06-15',
                    TaskSubtype: 'Task'
                }
            });
            expect(text(element, '.trust-logged')).toBe(
                'Logged as a Task: "Thank-you sent". The next trust-ladder sync clears the flag.'
            );
            expect(toast).toHaveBeenCalledTimes(1);
            expect(toast.mock.calls[0][0].detail.variant).toBe('success');
            expect($(element, 'lightning-button.trust-log')).toBeNull(); // logged once, not twice
        });

        it('logs a listening conversation as a completed call', async () => {
            const element = await render(CONTACT_FLAGGED);
            $(element, 'lightning-button.trust-log[data-flag="Missing listening"]').click();
            await flush();
            const fields = createRecord.mock.calls[0][0].fields;
            expect([fields.Subject, fields.TaskSubtype, fields.Status]).toEqual([
                'Listening conversation (check-in)',
                'Call',
                'Completed'
            ]);
            expect(fields.Trust_Listening__c).toBeUndefined(); // no Task info: the org may not have the field
        });

        it('marks the conversation it logs as listening where the user may set the field', async () => {
            const element = await render(CONTACT_FLAGGED);
            const task = {
                apiName: 'Task',
                fields: { Trust_Listening__c: { apiName: 'Trust_Listening__c', createable: true } }
            };
            getObjectInfo.emit(task, (config) => config.objectApiName.objectApiName === 'Task');
            await flush();
            $(element, 'lightning-button.trust-log[data-flag="Missing listening"]').click();
            await flush();
            expect(createRecord.mock.calls[0][0].fields.Trust_Listening__c).toBe('true');
        });

        it('leaves the field alone where the user may not set it', async () => {
            const element = await render(CONTACT_FLAGGED);
            const task = {
                apiName: 'Task',
                fields: { Trust_Listening__c: { apiName: 'Trust_Listening__c', createable: false } }
            };
            getObjectInfo.emit(task, (config) => config.objectApiName.objectApiName === 'Task');
            await flush();
            $(element, 'lightning-button.trust-log[data-flag="Missing listening"]').click();
            await flush();
            expect(createRecord.mock.calls[0][0].fields.Trust_Listening__c).toBeUndefined();
        });

        it('says why when the Task could not be logged, and keeps the buttons', async () => {
            createRecord.mockRejectedValueOnce({ body: { message: 'insufficient access rights on object id' } });
            const element = await render(CONTACT_FLAGGED);
            $(element, 'lightning-button.trust-log').click();
            await flush();
            await flush();
            expect(text(element, '.trust-log-error')).toBe(
                'The Task could not be logged: insufficient access rights on object id'
            );
            expect($(element, '.trust-logged')).toBeNull();
            expect($$(element, 'lightning-button.trust-log')).toHaveLength(2);
        });

        it('offers no button without an open flag', async () => {
            const element = await render(CONTACT_HELD);
            expect($(element, 'lightning-button.trust-log')).toBeNull();
        });
    });
});
