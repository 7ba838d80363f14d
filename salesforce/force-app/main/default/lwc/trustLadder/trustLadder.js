import { LightningElement, api, wire } from 'lwc';
import { getRecord, getFieldValue } from 'lightning/uiRecordApi';
import { getObjectInfo, getPicklistValues } from 'lightning/uiObjectInfoApi';
import CONTACT_OBJECT from '@salesforce/schema/Contact';
import STAGE_FIELD from '@salesforce/schema/Contact.Trust_Stage__c';
import SINCE_FIELD from '@salesforce/schema/Contact.Trust_Stage_Since__c';
import FLAGS_FIELD from '@salesforce/schema/Contact.Trust_Flags__c';
import NEXT_STEP_FIELD from '@salesforce/schema/Contact.Trust_Next_Step__c';
import REASON_FIELD from '@salesforce/schema/Contact.Trust_Reason__c';
import RULES_VERSION_FIELD from '@salesforce/schema/Contact.Trust_Rules_Version__c';

// Optional, not required: a field the user may not read (field-level security) is left out of the record
// instead of failing the whole load, and the part of the card that shows it stays hidden.
const FIELDS = [STAGE_FIELD, SINCE_FIELD, FLAGS_FIELD, NEXT_STEP_FIELD, REASON_FIELD, RULES_VERSION_FIELD];

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
    recordTypeId;
    stagePicklist;
    flagsPicklist;

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
