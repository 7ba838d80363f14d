import { LightningElement, api, wire } from 'lwc';
import { getRecord, getFieldValue, createRecord } from 'lightning/uiRecordApi';
import { ShowToastEvent } from 'lightning/platformShowToastEvent';
import LOCALE from '@salesforce/i18n/locale';
import { getObjectInfo, getPicklistValues } from 'lightning/uiObjectInfoApi';
import CONTACT_OBJECT from '@salesforce/schema/Contact';
import TASK_OBJECT from '@salesforce/schema/Task';
import STAGE_FIELD from '@salesforce/schema/Contact.Trust_Stage__c';
import SINCE_FIELD from '@salesforce/schema/Contact.Trust_Stage_Since__c';
import FLAGS_FIELD from '@salesforce/schema/Contact.Trust_Flags__c';
import NEXT_STEP_FIELD from '@salesforce/schema/Contact.Trust_Next_Step__c';
import REASON_FIELD from '@salesforce/schema/Contact.Trust_Reason__c';
import RULES_VERSION_FIELD from '@salesforce/schema/Contact.Trust_Rules_Version__c';
import HELD_UNTIL_FIELD from '@salesforce/schema/Contact.Trust_Held_Until__c';
import PREVIOUS_STAGE_FIELD from '@salesforce/schema/Contact.Trust_Previous_Stage__c';

// Optional, not required: a field the user may not read (field-level security) is left out of the record
// instead of failing the whole load, and the part of the card that shows it stays hidden.
// The two last are optional in the org too (issue 19): without them the card has no at-risk state and no trend.
const FIELDS = [
    STAGE_FIELD,
    SINCE_FIELD,
    FLAGS_FIELD,
    NEXT_STEP_FIELD,
    REASON_FIELD,
    RULES_VERSION_FIELD,
    HELD_UNTIL_FIELD,
    PREVIOUS_STAGE_FIELD
];

// What the card logs for an open flag, as a completed Task on the contact. The subjects are the ones the default
// rule file (rules/ladder.yaml) counts as a thank-you and as a listening conversation, so the next sync clears
// the flag; tests/journeys/test_card_texts.py syncs exactly these Tasks.
export const LOGGED = {
    'Missing thank-you': {
        button: 'Log the thank-you',
        subject: 'Thank-you sent',
        subtype: 'Task'
    },
    'Missing listening': {
        button: 'Log a listening conversation',
        subject: 'Listening conversation (check-in)',
        subtype: 'Call',
        listening: true
    }
};

// Trust_Listening__c: the rep's word that a conversation was listening (a picklist of 'true' and 'false', so that
// it can be left empty). The card sets it on the conversation it logs where the org has the field and the user
// may set it; elsewhere the Task is logged without it and the sync reads the subject.
export const LISTENING_FIELD = 'Trust_Listening__c';

/** Today on the user's calendar, as a Date field takes it (YYYY-MM-DD). */
export function today(now = new Date()) {
    const pad = (n) => String(n).padStart(2, '0');
    return `${now.getFullYear()}-${pad(now.getMonth() + 1)}-${pad(now.getDate())}`;
}

/** The first sentence (or line) of a reason, and whether there is more: the column is narrow. */
export function firstLine(text) {
    const value = text || '';
    const cut = value.search(/\.\s|\n/);
    if (cut < 0 || cut + 1 >= value.trim().length) {
        return { head: value, more: false };
    }
    return { head: value.slice(0, cut + 1), more: true };
}

/** The text of a Lightning Data Service error: a FetchResponse whose body is an object or an array of them. */
export function errorText(error) {
    if (!error) {
        return '';
    }
    const bodies = Array.isArray(error.body) ? error.body : [error.body];
    const messages = bodies.map((body) => body && body.message).filter((message) => message);
    if (messages.length) {
        return messages.join(' ');
    }
    return error.statusText || error.message || 'Unknown error';
}

/** { shown, value } of a field: shown is false when the record came back without it (no read access). */
function read(record, field) {
    const shown = Boolean(record && record.fields && field.fieldApiName in record.fields);
    return { shown, value: shown ? getFieldValue(record, field) : undefined };
}

function labelsOf(picklist) {
    const labels = new Map();
    for (const entry of (picklist && picklist.values) || []) {
        labels.set(entry.value, entry.label);
    }
    return labels;
}

export default class TrustLadder extends LightningElement {
    @api recordId;

    record;
    loadError;
    objectInfo;
    taskFields;
    recordTypeId;
    stagePicklist;
    flagsPicklist;
    reasonOpen = false;
    logging = false;
    logged = '';
    logError = '';

    @wire(getRecord, { recordId: '$recordId', optionalFields: FIELDS })
    wiredRecord({ data, error }) {
        if (data) {
            this.record = data;
            this.loadError = undefined;
        } else if (error) {
            this.record = undefined;
            this.loadError = error;
        }
        this.pickRecordType();
    }

    @wire(getObjectInfo, { objectApiName: CONTACT_OBJECT })
    wiredObjectInfo({ data }) {
        if (data) {
            this.objectInfo = data;
            this.pickRecordType();
        }
    }

    // Which Task fields this user may set: the listening answer is given only where it can be.
    @wire(getObjectInfo, { objectApiName: TASK_OBJECT })
    wiredTaskInfo({ data }) {
        if (data && data.apiName === 'Task') {
            this.taskFields = data.fields;
        }
    }

    get canMarkListening() {
        const field = this.taskFields && this.taskFields[LISTENING_FIELD];
        return Boolean(field && field.createable);
    }

    // Picklist values are scoped to a record type: the contact's own, else the object's default (the master
    // record type when the org has none). The rung names come from here, never from this file.
    @wire(getPicklistValues, { recordTypeId: '$recordTypeId', fieldApiName: STAGE_FIELD })
    wiredStages({ data, error }) {
        this.stagePicklist = data || (error ? { values: [] } : this.stagePicklist);
    }

    @wire(getPicklistValues, { recordTypeId: '$recordTypeId', fieldApiName: FLAGS_FIELD })
    wiredFlags({ data, error }) {
        this.flagsPicklist = data || (error ? { values: [] } : this.flagsPicklist);
    }

    pickRecordType() {
        const own = this.record && this.record.recordTypeId;
        const fallback = this.objectInfo && this.objectInfo.defaultRecordTypeId;
        const chosen = own || fallback;
        if (chosen && chosen !== this.recordTypeId) {
            this.recordTypeId = chosen;
        }
    }

    // -- states ----------------------------------------------------------------------------------------------

    get loading() {
        return !this.record && !this.loadError;
    }

    get errorMessage() {
        return this.loadError ? errorText(this.loadError) : '';
    }

    get stage() {
        return read(this.record, STAGE_FIELD);
    }

    /** Nothing of the six fields is readable: say so once instead of showing an empty card. */
    get noAccess() {
        return Boolean(this.record) && FIELDS.every((field) => !read(this.record, field).shown);
    }

    /** The stage is readable and empty: trust-ladder has not placed this contact yet. */
    get neverSynced() {
        const stage = this.stage;
        return stage.shown && !stage.value;
    }

    get placed() {
        const stage = this.stage;
        return stage.shown && Boolean(stage.value);
    }

    // -- the path --------------------------------------------------------------------------------------------

    get rungs() {
        return ((this.stagePicklist && this.stagePicklist.values) || []).map((entry) => ({
            label: entry.label,
            value: entry.value
        }));
    }

    get showPath() {
        return this.stage.shown && this.rungs.length > 0;
    }

    get currentStep() {
        return this.stage.value || undefined;
    }

    get stageLabel() {
        const value = this.stage.value;
        return labelsOf(this.stagePicklist).get(value) || value;
    }

    /** A rung the picklist does not offer (renamed in the rule file, or deactivated): the path cannot mark it. */
    get stageOffPath() {
        return this.placed && this.stagePicklist !== undefined && !labelsOf(this.stagePicklist).has(this.stage.value);
    }

    // -- the other fields -----------------------------------------------------------------------------------

    get since() {
        return read(this.record, SINCE_FIELD).value || undefined;
    }

    get showSince() {
        return this.placed && Boolean(this.since);
    }

    get flagsShown() {
        return read(this.record, FLAGS_FIELD).shown;
    }

    get flags() {
        const raw = read(this.record, FLAGS_FIELD).value;
        if (!raw) {
            return [];
        }
        const labels = labelsOf(this.flagsPicklist);
        return raw
            .split(';')
            .filter((value) => value)
            .map((value) => ({ value, label: labels.get(value) || value }));
    }

    get hasFlags() {
        return this.flags.length > 0;
    }

    get nextStep() {
        return read(this.record, NEXT_STEP_FIELD);
    }

    get showNextStep() {
        return this.nextStep.shown && Boolean(this.nextStep.value);
    }

    get reason() {
        return read(this.record, REASON_FIELD);
    }

    get showReason() {
        return this.reason.shown && Boolean(this.reason.value);
    }

    get reasonParts() {
        return firstLine(this.reason.value);
    }

    get reasonShown() {
        return this.reasonOpen ? this.reason.value : this.reasonParts.head;
    }

    get reasonHasMore() {
        return this.reasonParts.more;
    }

    get reasonToggleLabel() {
        return this.reasonOpen ? 'less' : 'more';
    }

    toggleReason() {
        this.reasonOpen = !this.reasonOpen;
    }

    // -- at risk, and the trend ------------------------------------------------------------------------------

    /** The day a held contact drops if nothing happens (Trust_Held_Until__c); empty when it is not held. */
    get heldUntil() {
        return read(this.record, HELD_UNTIL_FIELD).value || undefined;
    }

    get atRisk() {
        return this.placed && Boolean(this.heldUntil);
    }

    /** 'At risk: stays Familiar until Aug 14, 2026, then drops to Friend, unless the next step happens first.' */
    get atRiskText() {
        const day = new Intl.DateTimeFormat(LOCALE, {
            year: 'numeric',
            month: 'short',
            day: 'numeric',
            timeZone: 'UTC'
        }).format(new Date(`${this.heldUntil}T00:00:00Z`));
        const then = this.dropsTo ? `, then drops to ${this.dropsTo}` : '';
        return `At risk: stays ${this.stageLabel} until ${day}${then}, unless the next step happens first.`;
    }

    /** Rung values in the picklist's order, lowest first. */
    get order() {
        return this.rungs.map((rung) => rung.value);
    }

    /** The rung one below the current one, by the picklist's order; '' when unknown. */
    get dropsTo() {
        const at = this.order.indexOf(this.stage.value);
        return at > 0 ? labelsOf(this.stagePicklist).get(this.order[at - 1]) || this.order[at - 1] : '';
    }

    get previous() {
        return read(this.record, PREVIOUS_STAGE_FIELD).value || '';
    }

    /** 'up' or 'down' from the previous rung, by the picklist's order; '' when either is unknown. */
    get trend() {
        const from = this.order.indexOf(this.previous);
        const to = this.order.indexOf(this.stage.value);
        if (!this.placed || from < 0 || to < 0 || from === to) {
            return '';
        }
        return to > from ? 'up' : 'down';
    }

    get showTrend() {
        return Boolean(this.trend);
    }

    get trendIcon() {
        return this.trend === 'up' ? 'utility:arrowup' : 'utility:arrowdown';
    }

    get trendText() {
        const label = labelsOf(this.stagePicklist).get(this.previous) || this.previous;
        return `${this.trend} from ${label}`;
    }

    // -- the action ------------------------------------------------------------------------------------------

    /** One button per open flag the card knows how to answer. */
    get actions() {
        return this.flags
            .filter((flag) => LOGGED[flag.value])
            .map((flag) => ({ flag: flag.value, label: LOGGED[flag.value].button }));
    }

    get showActions() {
        return this.placed && this.actions.length > 0 && !this.logged;
    }

    async logActivity(event) {
        const wanted = LOGGED[event.target.dataset.flag];
        if (!wanted || this.logging) {
            return;
        }
        this.logging = true;
        this.logError = '';
        try {
            const fields = {
                WhoId: this.recordId,
                Subject: wanted.subject,
                Status: 'Completed',
                ActivityDate: today(),
                TaskSubtype: wanted.subtype
            };
            if (wanted.listening && this.canMarkListening) {
                fields[LISTENING_FIELD] = 'true';
            }
            await createRecord({ apiName: 'Task', fields });
            this.logged = `Logged as a Task: "${wanted.subject}". The next trust-ladder sync clears the flag.`;
            this.dispatchEvent(new ShowToastEvent({ title: 'Logged', message: this.logged, variant: 'success' }));
        } catch (error) {
            this.logError = `The Task could not be logged: ${errorText(error)}`;
        } finally {
            this.logging = false;
        }
    }

    get rulesVersion() {
        return read(this.record, RULES_VERSION_FIELD).value || '';
    }

    get hasRulesVersion() {
        return Boolean(this.rulesVersion);
    }

    /** Field labels as the org names them (translations included), with the shipped labels as a fallback. */
    label(field, fallback) {
        const info = this.objectInfo && this.objectInfo.fields && this.objectInfo.fields[field.fieldApiName];
        return (info && info.label) || fallback;
    }

    get flagsLabel() {
        return this.label(FLAGS_FIELD, 'Trust Flags');
    }

    get nextStepLabel() {
        return this.label(NEXT_STEP_FIELD, 'Trust Next Step');
    }

    get reasonLabel() {
        return this.label(REASON_FIELD, 'Trust Reason');
    }
}
