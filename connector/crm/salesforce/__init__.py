"""The Salesforce backend: a local mirror kept up to date through simple-salesforce, written back field by field.

`backend.SalesforceCrm` is the CrmBackend; the modules beside it each hold one responsibility: sign-in (`auth`),
the one retry policy (`retry`), API usage and the budget (`limits`), the HTTP session that applies both
(`transport`), SOQL (`soql`), pulling (`pull`), writing back (`push`), and the Contact fields (`fields`).
"""
