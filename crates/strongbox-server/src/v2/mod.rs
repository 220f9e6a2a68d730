//! Databunker Pro's v2 API: `POST /v2/{Method}` with a JSON body, answered
//! `{"status":"ok",…}` or `{"status":"error","message":…}`. A thin adapter, like v1:
//! every method calls the core service its v1 twin calls, so no rule exists twice.
//!
//! Transport rules (the reference's §0): an empty body is `{}`; `request_metadata`
//! (an object, at most 4 KiB) is accepted by every method and sealed into the audit
//! events the call makes (`strongbox_core::context`); `null` is an absent field; the
//! tenant is resolved by `extract::vault_for` (`X-Bunker-Tenant`, the `Host`
//! sub-domain, else the main tenant); an unknown method is a JSON 404.

mod access;
mod apps;
mod audit;
mod bulk;
mod consent;
mod files;
mod requests;
mod sessions;
mod system;
mod tenants;
mod tokens;
mod users;

use axum::Router;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::any;
use serde_json::{Map, Value, json};
use strongbox_core::{Error, Mode, Outcome, Result};

use crate::AppState;
use crate::error::{ApiError, error_response};
use crate::openapi::{Api, Auth, Body, Op, object, ok, ok_some, string};
use crate::reply::ok_fields;

/// What every handler returns.
type Reply = std::result::Result<Response, ApiError>;

/// A v2 method's operation: `POST /v2/<name>`, its JSON body optional.
macro_rules! method {
    ($name:literal, $summary:literal) => {
        Op::post(concat!("/v2/", $name), $name, $summary).body(Body::Object { required: false })
    };
}

/// The v2 methods, each with its entry in the API document.
pub fn api() -> Api<AppState> {
    Api::new()
        .section("v2 users")
        .op(
            method!("UserCreate", "Create a person's record (v2)")
                .fields(&args(&[("profile", object(), true), ("finaltime", time(), false), ("slidingtime", time(), false), ("groupid", id(), false), ("groupname", string(), false), ("roleid", id(), false), ("rolename", string(), false)]))
                .describe("`profile` (object, required): the person's data, indexed by `login`, `email`, `phone` and `custom`. `finaltime` (root): the person's retention, as `POST /v1/exp/start`; `slidingtime` is accepted and not acted on. `groupid`/`groupname` with `roleid`/`rolename` (root): the person joins that group with that role (both must exist, else 404).")
                .conflict()
                .can_miss()
                .ok(ok(&[("token", string())])),
            users::create,
        )
        .op(
            method!("UserCreateBulk", "Create many people at once (v2, root)")
                .fields(&args(&[("records", json!({"type": "array", "items": {"type": "object", "properties": {"profile": object()}, "required": ["profile"]}}), true), ("finaltime", time(), false), ("slidingtime", time(), false)]))
                .describe("`records`: [{`profile`}] (1–10000), `finaltime` (retention of each), `slidingtime` (accepted, not acted on). Each record is created or refused on its own: `created` [{`token`, `profile`}], `errors` [{`profile`, `reason`}].")
                .ok(ok(&[("created", json!({"type": "array", "items": object()})), ("errors", json!({"type": "array", "items": object()}))])),
            users::create_bulk,
        )
        .op(
            method!("UserGet", "Read a person's profile (v2)")
                .fields(&who(&[("version", id(), false)]))
                .describe("`mode` (`token`, `login`, `email`, `phone`, `custom`) and `identity` name the person; `version` asks for an earlier profile (kept with `--versioning true`; UserListVersions lists them).")
                .can_miss()
                .ok(ok(&[("token", string()), ("profile", object()), ("version", json!({"type": "integer"}))])),
            users::get,
        )
        .op(
            method!("UserSearch", "Fuzzy search of people by login, email, phone or custom (v2, root, unlocked)")
                .fields(&args(&[("identity", string(), true), ("unlockuuid", string(), true), ("limit", json!({"type": "integer", "minimum": 1}), false)]))
                .describe("`identity` (3 characters or more), `unlockuuid`, `limit` (1–100, default 100). Needs `--search true`: 403 without it, 503 while the index is still being built. An `identity` with `@` is compared with emails, any other with logins, phones and custom values, on keyed trigram digests (`docs/security-model.md` says what they reveal); candidates are then checked on the plaintext the caller may see. `rows` [{`token`, `profile`, `version`, `score`}], best first; `score` is the share of the query's trigrams the closest field holds (0.5 or more). Each person returned is an audited read.")
                .ok(rows_schema()),
            bulk::search_users,
        )
        .op(
            method!("UserListVersions", "The versions of a person's profile (v2)")
                .fields(&who(&[]))
                .describe("`mode`, `identity`: `versions` [{`version`, `optime`, `md5`, `current`}], the earlier profiles kept (`--versioning true`, at most `--versioning-max-versions`, for `--versioning-max-age`) oldest first, then the current one. `md5` is Databunker Pro's checksum of the profile's JSON.")
                .can_miss()
                .ok(ok(&[("token", string()), ("versions", json!({"type": "array", "items": object()}))])),
            users::list_versions,
        )
        .op(
            method!("UserUpdate", "Change a person's profile by merge patch (v2)")
                .fields(&who(&[("profile", object(), true)]))
                .describe("`mode`, `identity`, `profile`: an RFC 7386 merge patch; the indexes follow the new values.")
                .can_miss()
                .conflict()
                .ok(ok(&[])),
            users::update,
        )
        .op(
            method!("UserPatch", "Change a person's profile by JSON Patch (v2)")
                .fields(&who(&[("patch", json!({"type": "array", "items": object()}), true)]))
                .describe("`mode`, `identity`, `patch`: an RFC 6902 JSON Patch.")
                .can_miss()
                .conflict()
                .ok(ok(&[])),
            users::patch,
        )
        .op(
            method!("UserDelete", "Erase a person (v2)")
                .fields(&who(&[]))
                .describe("`mode`, `identity`. Crypto-shredding, with a signed erasure receipt, as `DELETE /v1/user`.")
                .can_miss()
                .ok(ok(&[])),
            users::delete,
        )
        .op(
            method!("UserDeleteBulk", "Erase many people at once (v2)")
                .fields(&args(&[("users", json!({"type": "array", "items": {"type": "object", "properties": {"mode": mode(), "identity": identity()}, "required": ["mode", "identity"]}}), true)]))
                .describe("`users`: [{`mode`, `identity`}] (1–10000), each erased as by UserDelete: `deleted_count`, `errors` [{`index`, `reason`}].")
                .ok(ok(&[("deleted_count", json!({"type": "integer"})), ("errors", json!({"type": "array", "items": object()}))])),
            users::delete_bulk,
        )
        .op(
            method!("UserUpdateRequest", "Ask the DPO to change a person's profile (v2)")
                .fields(&who(&[("profile", object(), true)]))
                .describe("`mode`, `identity`, `profile` (a merge patch): checked now, filed as a request for the DPO whoever asks.")
                .can_miss()
                .ok(requested_schema()),
            users::update_request,
        )
        .op(
            method!("UserPatchRequest", "Ask the DPO to patch a person's profile (v2)")
                .fields(&who(&[("patch", json!({"type": "array", "items": object()}), true)]))
                .describe("`mode`, `identity`, `patch` (an RFC 6902 JSON Patch), filed as a request for the DPO.")
                .can_miss()
                .ok(requested_schema()),
            users::patch_request,
        )
        .op(
            method!("UserDeleteRequest", "Ask the DPO to erase a person (v2)")
                .fields(&who(&[]))
                .describe("`mode`, `identity`: a forget-me request for the DPO.")
                .can_miss()
                .ok(requested_schema()),
            users::delete_request,
        )
        .section("v2 user requests")
        .op(
            method!("UserRequestGet", "A request for the DPO, with what it would change (v2)")
                .fields(&args(&[("requestuuid", string(), true)]))
                .describe("`requestuuid`. Root, or the person it is about.")
                .can_miss()
                .ok(ok(&[("request", object())])),
            requests::get,
        )
        .op(
            method!("UserRequestListUserRequests", "A person's requests (v2)")
                .fields(&who(&page()))
                .describe("`mode`, `identity`, `offset`, `limit` (default 10; outside 1–100: 100).")
                .can_miss()
                .ok(rows_schema()),
            requests::list_of_user,
        )
        .op(
            method!("UserRequestApprove", "Approve and carry out a request (v2, root)")
                .fields(&args(&[("requestuuid", string(), true), ("reason", string(), false)]))
                .describe("`requestuuid`, `reason`. A decided request answers 409 `This user request is closed`.")
                .can_miss()
                .conflict()
                .ok(ok(&[])),
            requests::approve,
        )
        .op(
            method!("UserRequestCancel", "Cancel a request (v2)")
                .fields(&args(&[("requestuuid", string(), true), ("reason", string(), false)]))
                .describe("`requestuuid`, `reason`. Root, or the person it is about.")
                .can_miss()
                .conflict()
                .ok(ok(&[])),
            requests::cancel,
        )
        .section("v2 app data")
        .op(
            method!("AppdataCreate", "Store an application's document of a person (v2)")
                .fields(&who(&[("appname", string(), true), ("appdata", object(), true)]))
                .describe("`mode`, `identity`, `appname` (`^[a-z][a-z0-9_]{1,30}$`), `appdata` (object): replaces the document.")
                .can_miss()
                .ok(ok(&[])),
            apps::create,
        )
        .op(
            method!("AppdataGet", "Read an application's document of a person (v2)")
                .fields(&who(&[("appname", string(), true)]))
                .describe("`mode`, `identity`, `appname`.")
                .can_miss()
                .ok(ok(&[("appdata", object())])),
            apps::get,
        )
        .op(
            method!("AppdataUpdate", "Change an application's document of a person (v2)")
                .fields(&who(&[("appname", string(), true), ("appdata", object(), true)]))
                .describe("`mode`, `identity`, `appname`, `appdata`: merged into the document (RFC 7386).")
                .can_miss()
                .ok(ok(&[])),
            apps::update,
        )
        .op(
            method!("AppdataUpdateRequest", "Ask the DPO to change an application's document (v2)")
                .fields(&who(&[("appname", string(), true), ("appdata", object(), true)]))
                .describe("`mode`, `identity`, `appname`, `appdata` (a merge patch), filed as a request for the DPO.")
                .can_miss()
                .ok(requested_schema()),
            apps::update_request,
        )
        .op(
            method!("AppdataDelete", "Delete an application's document of a person (v2)")
                .fields(&who(&[("appname", string(), true)]))
                .describe("`mode`, `identity`, `appname`.")
                .can_miss()
                .ok(ok(&[])),
            apps::delete,
        )
        .op(
            method!("AppdataListUserAppNames", "The applications holding a person's data (v2)")
                .fields(&who(&[]))
                .describe("`mode`, `identity`.")
                .can_miss()
                .ok(ok(&[("apps", json!({"type": "array", "items": string()}))])),
            apps::list_of_user,
        )
        .op(
            method!("AppdataListAppNames", "The names of all applications (v2, root)")
                .fields(&args(&[]))
                .ok(ok(&[("apps", json!({"type": "array", "items": string()}))])),
            apps::list_all,
        )
        .section("v2 consent")
        .op(
            method!("LegalBasisCreate", "Create a legal basis (v2, root)")
                .fields(&args(&basis(false)))
                .describe("`brief` (`^[a-z][a-z0-9-]{1,64}$`), `status`, `module`, `fulldesc`, `shortdesc`, `basistype`, `requiredmsg`, `requiredflag`, `usercontrol`.")
                .ok(ok(&[])),
            consent::create_basis,
        )
        .op(
            method!("LegalBasisUpdate", "Change a legal basis (v2, root)")
                .fields(&args(&basis(true)))
                .describe("`brief`, and `newbrief` to rename it, with the fields of LegalBasisCreate to change.")
                .can_miss()
                .ok(ok(&[])),
            consent::update_basis,
        )
        .op(
            method!("LegalBasisDelete", "Delete a legal basis (v2, root)")
                .fields(&args(&[("brief", string(), true)]))
                .describe("`brief`. Consents to it are revoked.")
                .can_miss()
                .ok(ok(&[])),
            consent::delete_basis,
        )
        .op(
            method!("LegalBasisListAgreements", "The legal bases (v2)")
                .fields(&args(&[]))
                .describe("Root: every legal basis; a person's access token: the active ones.")
                .ok(rows_schema()),
            consent::list_bases,
        )
        .op(
            method!("AgreementAccept", "Record a person's consent (v2)")
                .fields(&who(&[("brief", string(), true), ("agreementmethod", string(), false), ("referencecode", string(), false), ("starttime", time(), false), ("finaltime", time(), false), ("status", string(), false), ("lastmodifiedby", string(), false)]))
                .describe("`mode`, `identity`, `brief`, and `agreementmethod`, `referencecode`, `starttime`, `finaltime`, `status`, `lastmodifiedby`.")
                .can_miss()
                .ok(ok(&[])),
            consent::accept,
        )
        .op(
            method!("AgreementGet", "A person's consent to a legal basis (v2)")
                .fields(&who(&[("brief", string(), true)]))
                .describe("`mode`, `identity`, `brief`.")
                .can_miss()
                .ok(ok(&[("agreement", object())])),
            consent::get,
        )
        .op(
            method!("AgreementListUserAgreements", "A person's consents (v2)")
                .fields(&who(&[]))
                .describe("`mode`, `identity`.")
                .can_miss()
                .ok(rows_schema()),
            consent::list_of_user,
        )
        .op(
            method!("AgreementCancel", "Withdraw a person's consent (v2)")
                .fields(&who(&[("brief", string(), true), ("lastmodifiedby", string(), false)]))
                .describe("`mode`, `identity`, `brief`. A person's own withdrawal of a basis they may not withdraw themselves becomes a request.")
                .can_miss()
                .ok(json!({"type": "object", "required": ["status"], "properties": {"status": {"const": "ok"}, "result": string(), "rtoken": string()}})),
            consent::cancel,
        )
        .op(
            method!("AgreementCancelRequest", "Ask the DPO to withdraw a person's consent (v2)")
                .fields(&who(&[("brief", string(), true)]))
                .describe("`mode`, `identity`, `brief`: the withdrawal, filed as a request for the DPO (the person must have an agreement).")
                .can_miss()
                .ok(requested_schema()),
            consent::cancel_request,
        )
        .op(
            method!("AgreementRevokeAll", "Withdraw everyone's consent to a legal basis (v2, root)")
                .fields(&args(&[("brief", string(), true)]))
                .describe("`brief`.")
                .can_miss()
                .ok(ok(&[])),
            consent::revoke_all,
        )
        .section("v2 processing activities")
        .op(
            method!("ProcessingActivityCreate", "Create a processing activity (v2, root)")
                .fields(&args(&activity(false)))
                .describe("`activity` (`^[a-z][a-z0-9-]{1,64}$`), `title`, `script`, `fulldesc`, `applicableto`. An existing activity of that name is changed.")
                .ok(ok(&[])),
            consent::create_activity,
        )
        .op(
            method!("ProcessingActivityUpdate", "Change a processing activity (v2, root)")
                .fields(&args(&activity(true)))
                .describe("`activity`, `newactivity` (renames it), and the fields of ProcessingActivityCreate to change.")
                .can_miss()
                .conflict()
                .ok(ok(&[])),
            consent::update_activity,
        )
        .op(
            method!("ProcessingActivityDelete", "Delete a processing activity (v2, root)")
                .fields(&args(&[("activity", string(), true)]))
                .describe("`activity`.")
                .ok(ok(&[])),
            consent::delete_activity,
        )
        .op(
            method!("ProcessingActivityLinkLegalBasis", "Link a legal basis to a processing activity (v2, root)")
                .fields(&args(&[("activity", string(), true), ("brief", string(), true)]))
                .describe("`activity`, `brief`.")
                .can_miss()
                .ok(ok(&[])),
            consent::link_activity,
        )
        .op(
            method!("ProcessingActivityUnlinkLegalBasis", "Unlink a legal basis from a processing activity (v2, root)")
                .fields(&args(&[("activity", string(), true), ("brief", string(), true)]))
                .describe("`activity`, `brief`.")
                .can_miss()
                .ok(ok(&[])),
            consent::unlink_activity,
        )
        .op(
            method!("ProcessingActivityListActivities", "The processing activities with their legal bases (v2, root)")
                .fields(&args(&[]))
                .describe("No arguments.")
                .ok(rows_schema()),
            consent::list_activities,
        )
        .section("v2 audit")
        .op(
            method!("AuditListUserEvents", "The audit events about a person (v2)")
                .fields(&who(&page()))
                .describe("`mode`, `identity`, `offset`, `limit` (default 10; outside 1–100: 100). Newest first; root, or the person. By token also after an erasure.")
                .can_miss()
                .ok(rows_schema()),
            audit::list_of_user,
        )
        .op(
            method!("AuditGetEvent", "One audit event with its detail (v2)")
                .fields(&args(&[("auditeventuuid", string(), true)]))
                .describe("`auditeventuuid`. Root, or the person it is about; the detail reads `{}` once they are erased.")
                .can_miss()
                .ok(ok(&[("eventtype", string()), ("timestamp", json!({"type": "integer"})), ("details", object()), ("event", object())])),
            audit::get,
        )
        .section("v2 bulk listings")
        .op(
            method!("BulkListUnlock", "Unlock the bulk listings for 60 seconds (v2, root)")
                .fields(&args(&[]))
                .describe("No arguments. The `unlockuuid` works for 60 seconds, again and again, only with the token that asked for it.")
                .ok(ok(&[("unlockuuid", string())])),
            bulk::unlock,
        )
        .op(
            method!("BulkListUsers", "The profiles of the people named (v2, root, unlocked)")
                .fields(&args(&[("unlockuuid", string(), true), ("users", json!({"type": "array", "items": {"type": "object", "properties": {"mode": mode(), "identity": identity()}, "required": ["mode", "identity"]}}), true)]))
                .describe("`unlockuuid`, `users`: [{`mode`, `identity`}] (1–1000). Needs `--list-users true`. People not in the vault are left out.")
                .ok(rows_schema()),
            bulk::list_users,
        )
        .op(
            method!("BulkListAllUsers", "A page of everyone's profiles (v2, root, unlocked)")
                .fields(&args(&[&[("unlockuuid", string(), true)][..], &page()].concat()))
                .describe("`unlockuuid`, `offset`, `limit`. Needs `--list-users true`.")
                .ok(rows_schema()),
            bulk::list_all_users,
        )
        .op(
            method!("BulkListAllUserRequests", "Every request for the DPO (v2, root, unlocked)")
                .fields(&args(&[&[("unlockuuid", string(), true), ("status", json!({"enum": ["open", "approved", "canceled"]}), false)][..], &page()].concat()))
                .describe("`unlockuuid`, `status` (`open`, `approved`, `canceled`; all when absent), `offset`, `limit`. Newest change first.")
                .ok(rows_schema()),
            bulk::list_all_requests,
        )
        .op(
            method!("BulkListAllAuditEvents", "The whole audit log (v2, root, unlocked)")
                .fields(&args(&[&[("unlockuuid", string(), true)][..], &page()].concat()))
                .describe("`unlockuuid`, `offset`, `limit`. Newest first.")
                .ok(rows_schema()),
            bulk::list_all_audit,
        )
        .section("v2 tokenization")
        .op(
            method!("TokenCreate", "Replace a value by a token (v2, root)")
                .fields(&args(&token_options(&[("tokentype", token_type(), true), ("record", string(), true)])))
                .describe("`tokentype` (`creditcard`, `email`, `text`), `record` (the value, at most 4096 bytes), `unique` (the same value gets the same token, its expiry restarted), `slidingtime` (expires after this long without a read), `finaltime`, and for cards `keepfirst` (0–6) and `keeplast` (0–4) digits kept. A card's `tokenbase` has its length and separators and passes Luhn; an address's is a random one at `token.invalid`; text gets a `tokenuuid` only. The value is kept sealed; the token is random.")
                .conflict()
                .ok(ok_some(&[("tokenuuid", string()), ("tokentype", string())], &[("tokenbase", string()), ("duplicate", json!({"type": "boolean"}))])),
            tokens::create,
        )
        .op(
            method!("TokenCreateBulk", "Replace many values by tokens (v2, root)")
                .fields(&args(&token_options(&[("records", json!({"type": "array", "items": {"type": "object", "properties": {"tokentype": token_type(), "record": string()}, "required": ["tokentype", "record"]}}), true)])))
                .describe("`records`: [{`tokentype`, `record`}] (1–10000), with TokenCreate's options for all. Each is tokenized or refused on its own: `created` and `duplicates` (found again by `unique`) [{`tokenuuid`, `tokenbase`, `record`, `tokentype`}], `errors` [{`index`, `message`}], `num` (tokens returned), `summary` {`created`, `duplicates`, `errors`, `total`}.")
                .ok(ok(&[("num", json!({"type": "integer"})), ("summary", object()), ("created", json!({"type": "array", "items": object()})), ("duplicates", json!({"type": "array", "items": object()})), ("errors", json!({"type": "array", "items": object()}))])),
            tokens::create_bulk,
        )
        .op(
            method!("TokenGet", "The value a token stands for (v2, root)")
                .fields(&args(&[("token", string(), true)]))
                .describe("`token`: its `tokenuuid` or its `tokenbase`. Audited; an expired token is unknown (404 `Token not found`).")
                .can_miss()
                .ok(ok(&[("tokenuuid", string()), ("tokenbase", string()), ("record", string()), ("tokentype", string())])),
            tokens::get,
        )
        .op(
            method!("TokenDelete", "Delete a token (v2, root)")
                .fields(&args(&[("token", string(), true)]))
                .describe("`token`: its `tokenuuid` or its `tokenbase`; both stop resolving.")
                .can_miss()
                .ok(ok(&[])),
            tokens::delete,
        )
        .op(
            method!("BulkListTokens", "The values of many tokens (v2, root, unlocked)")
                .fields(&args(&[("unlockuuid", string(), true), ("tokens", json!({"type": "array", "items": string()}), true)]))
                .describe("`unlockuuid`, `tokens` (1–10000, either form). Unknown and expired tokens are left out; each read is audited.")
                .ok(rows_schema()),
            tokens::bulk_list,
        )
        .op(
            method!("BulkDeleteTokens", "Delete many tokens (v2, root, unlocked)")
                .fields(&args(&[("unlockuuid", string(), true), ("tokens", json!({"type": "array", "items": string()}), true)]))
                .describe("`unlockuuid`, `tokens` (1–10000, either form): `deleted`, how many there were.")
                .ok(ok(&[("deleted", json!({"type": "integer"}))])),
            tokens::bulk_delete,
        )
        .section("v2 files")
        .op(
            method!("FileCreate", "Store a person's file, encrypted (v2)")
                .fields(&who(&[("filename", string(), true), ("filedata", string(), true), ("mimetype", string(), false), ("tags", json!({"type": ["array", "string"], "items": string()}), false), ("finaltime", time(), false), ("slidingtime", time(), false)]))
                .describe("`mode`, `identity`, `filename` (1–255 characters), `filedata` (the content, base64), `mimetype` (guessed from the name when absent), `tags` (a list or comma-separated: each 1–50 of `a-z0-9._-`, at most 16; stored lower-cased, sorted, in the clear), `slidingtime`, `finaltime`. The same content again for the same person returns its file with `duplicate: true`. Large files stream: send the raw content with `Content-Type: application/octet-stream` and the other arguments as a JSON object in the `X-Bunker-File` header. Content is sealed in 1 MiB chunks under the person's key, at most `--max-file-bytes`.")
                .can_miss()
                .ok(ok(&[("token", string()), ("fileuuid", string()), ("duplicate", json!({"type": "boolean"})), ("tags", json!({"type": "array", "items": string()}))])),
            files::create,
        )
        .op(
            method!("FileGet", "Read a person's file (v2)")
                .fields(&who(&[("fileuuid", string(), false), ("filename", string(), false), ("raw", json!({"type": "boolean"}), false)]))
                .describe("`mode`, `identity`, `fileuuid` or `filename` (the newest file of that name). With `raw: true` the answer is the content itself, streamed, with its `Content-Type` and a `Content-Disposition`; otherwise JSON with `filedata` in base64 (files up to 16 MiB). Audited.")
                .can_miss()
                .ok(ok(&[("token", string()), ("fileuuid", string()), ("filename", string()), ("mimetype", string()), ("size", json!({"type": "integer"})), ("tags", json!({"type": "array", "items": string()})), ("filedata", string())])),
            files::get,
        )
        .op(
            method!("FileListUserFiles", "A person's files (v2)")
                .fields(&who(&[("tag", string(), false)]))
                .describe("`mode`, `identity`, `tag` (one tag: only files carrying it). Newest first: `files` [{`fileuuid`, `filename`, `mimetype`, `size`, `tags`, `doublehash`, `creationtime`}].")
                .can_miss()
                .ok(ok(&[("token", string()), ("files", json!({"type": "array", "items": object()}))])),
            files::list,
        )
        .op(
            method!("FileList", "A person's files (v2; FileListUserFiles)")
                .fields(&who(&[("tag", string(), false)]))
                .describe("The same as FileListUserFiles.")
                .can_miss()
                .ok(ok(&[("token", string()), ("files", json!({"type": "array", "items": object()}))])),
            files::list,
        )
        .op(
            method!("FileListByTag", "A person's files carrying a tag (v2)")
                .fields(&who(&[("tag", string(), true)]))
                .describe("FileListUserFiles with `tag` required.")
                .can_miss()
                .ok(ok(&[("token", string()), ("files", json!({"type": "array", "items": object()}))])),
            files::list_by_tag,
        )
        .op(
            method!("FileReplaceTags", "Replace the tags of a file (v2)")
                .fields(&who(&[("fileuuid", string(), true), ("tags", json!({"type": ["array", "string"], "items": string()}), true)]))
                .describe("`mode`, `identity`, `fileuuid`, `tags`: the complete new set, normalised as FileCreate's.")
                .can_miss()
                .ok(ok(&[("tags", json!({"type": "array", "items": string()}))])),
            files::replace_tags,
        )
        .op(
            method!("FileDelete", "Delete a person's file (v2)")
                .fields(&who(&[("fileuuid", string(), true)]))
                .describe("`mode`, `identity`, `fileuuid`: the file and its content are deleted.")
                .can_miss()
                .ok(ok(&[("token", string())])),
            files::delete,
        )
        .op(
            method!("BulkListFilesByTag", "Files carrying a tag, across people (v2, root, unlocked)")
                .fields(&args(&[("unlockuuid", string(), true), ("tag", string(), true), ("offset", json!({"type": "integer"}), false), ("limit", json!({"type": "integer"}), false)]))
                .describe("`unlockuuid`, `tag`, `offset`, `limit`: `total` and `rows` [{`token`, `fileuuid`, `filename`, `mimetype`, `size`, `tags`, `doublehash`, `creationtime`}]; each listed file is an audited read.")
                .ok(rows_schema()),
            files::bulk_list_by_tag,
        )
        .section("v2 groups")
        .op(
            method!("GroupCreate", "Create a group (v2, root)")
                .fields(&args(&[("groupname", string(), true), ("groupdesc", string(), false), ("grouptype", string(), false)]))
                .describe("`groupname` (1–64 characters, unique in the tenant), `groupdesc`, `grouptype` (at most 30 characters; default `users`). Names and descriptions are plaintext: no personal data in them.")
                .conflict()
                .ok(ok(&[("groupid", json!({"type": "integer"}))])),
            access::group_create,
        )
        .op(
            method!("GroupGet", "A group (v2, root)")
                .fields(&args(&[("groupid", id(), false), ("groupname", string(), false)]))
                .describe("`groupid` or `groupname`.")
                .can_miss()
                .ok(ok(&[("groupid", json!({"type": "integer"})), ("groupname", string()), ("groupdesc", string()), ("grouptype", string())])),
            access::group_get,
        )
        .op(
            method!("GroupListAllGroups", "Every group (v2, root)")
                .fields(&args(&[]))
                .ok(rows_schema()),
            access::group_list,
        )
        .op(
            method!("GroupUpdate", "Rename a group or change its description (v2, root)")
                .fields(&args(&[("groupid", id(), false), ("groupname", string(), false), ("groupdesc", string(), false), ("grouptype", string(), false)]))
                .describe("`groupid` and the fields to change (`groupname` renames it); or `groupname` alone to name the group.")
                .can_miss()
                .conflict()
                .ok(ok(&[])),
            access::group_update,
        )
        .op(
            method!("GroupDelete", "Delete a group and its memberships (v2, root)")
                .fields(&args(&[("groupid", id(), false), ("groupname", string(), false)]))
                .describe("`groupid` or `groupname`. Its id is not reused.")
                .can_miss()
                .ok(ok(&[])),
            access::group_delete,
        )
        .op(
            method!("GroupAddUser", "Put a person in a group, with a role there (v2, root)")
                .fields(&who(&[("groupid", id(), false), ("groupname", string(), false), ("roleid", id(), false), ("rolename", string(), false)]))
                .describe("`mode`, `identity`, `groupid` or `groupname`, and `roleid` or `rolename` (their role in the group). Again: changes the role.")
                .can_miss()
                .ok(ok(&[])),
            access::group_add_user,
        )
        .op(
            method!("GroupDeleteUser", "Take a person out of a group (v2, root)")
                .fields(&who(&[("groupid", id(), false), ("groupname", string(), false)]))
                .describe("`mode`, `identity`, `groupid` or `groupname`.")
                .can_miss()
                .ok(ok(&[])),
            access::group_delete_user,
        )
        .op(
            method!("GroupListUserGroups", "A person's groups (v2)")
                .fields(&who(&[]))
                .describe("`mode`, `identity`: their groups, with their role in each (`roleid`, `rolename`).")
                .can_miss()
                .ok(rows_schema()),
            access::group_list_of_user,
        )
        .op(
            method!("BulkListGroupUsers", "A group's members with their profiles (v2, root, unlocked)")
                .fields(&args(&[&[("unlockuuid", string(), true), ("groupid", id(), false), ("groupname", string(), false)][..], &page()].concat()))
                .describe("`unlockuuid`, `groupid` or `groupname`, `offset`, `limit`: [{`token`, `profile`, `rolename`}]. Needs `--list-users true`; a role token sees each profile as its policies allow.")
                .can_miss()
                .ok(rows_schema()),
            access::bulk_list_group_users,
        )
        .section("v2 roles, policies and access tokens")
        .op(
            method!("RoleCreate", "Create a role (v2, main tenant root)")
                .fields(&args(&[("rolename", string(), true), ("roledesc", string(), false)]))
                .describe("`rolename` (1–64 characters), `roledesc`. Roles are the vault's: every tenant uses them. 409 `The role record already exists`.")
                .conflict()
                .ok(ok(&[("roleid", json!({"type": "integer"}))])),
            access::role_create,
        )
        .op(
            method!("RoleUpdate", "Rename a role or change its description (v2, main tenant root)")
                .fields(&args(&[("roleid", id(), false), ("rolename", string(), false), ("roledesc", string(), false)]))
                .describe("`roleid` and the fields to change (`rolename` renames it); or `rolename` alone to name the role.")
                .can_miss()
                .conflict()
                .ok(ok(&[])),
            access::role_update,
        )
        .op(
            method!("RoleLinkPolicy", "Link a policy to a role (v2, main tenant root)")
                .fields(&args(&[("roleid", id(), false), ("rolename", string(), false), ("policyid", id(), false), ("policyname", string(), false)]))
                .describe("`roleid` or `rolename`, `policyid` or `policyname`.")
                .can_miss()
                .ok(ok(&[])),
            access::role_link_policy,
        )
        .op(
            method!("PolicyCreate", "Create a policy (v2, main tenant root)")
                .fields(&args(&[("policyname", string(), true), ("policydesc", string(), false), ("policy", json!({"oneOf": [object(), {"type": "array", "items": object()}]}), true)]))
                .describe("`policyname`, `policydesc`, `policy`: a statement, a list of them or `{\"Statement\": [...]}` (the language, its evaluation order and masking: docs/security-model.md). An invalid policy is refused with the reason.")
                .conflict()
                .ok(ok(&[("policyid", json!({"type": "integer"}))])),
            access::policy_create,
        )
        .op(
            method!("PolicyUpdate", "Change a policy (v2, main tenant root)")
                .fields(&args(&[("policyid", id(), false), ("policyname", string(), false), ("policydesc", string(), false), ("policy", json!({"oneOf": [object(), {"type": "array", "items": object()}]}), false)]))
                .describe("`policyid` and the fields to change (`policyname` renames it); or `policyname` alone to name the policy. Takes effect with the next call of every token of every role it is linked to.")
                .can_miss()
                .conflict()
                .ok(ok(&[])),
            access::policy_update,
        )
        .op(
            method!("PolicyGet", "A policy (v2, root)")
                .fields(&args(&[("policyid", id(), false), ("policyname", string(), false)]))
                .describe("`policyid` or `policyname`.")
                .can_miss()
                .ok(ok(&[("policyid", json!({"type": "integer"})), ("policyname", string()), ("policydesc", string()), ("policy", json!({}))])),
            access::policy_get,
        )
        .op(
            method!("PolicyListAllPolicies", "Every policy (v2, root)")
                .fields(&args(&[]))
                .ok(rows_schema()),
            access::policy_list,
        )
        .op(
            method!("XTokenCreateForUser", "A person's own access token (v2, root)")
                .fields(&who(&[("finaltime", time(), false), ("slidingtime", time(), false)]))
                .describe("`mode`, `identity`, `finaltime` (or `slidingtime`): its lifetime, 10 minutes by default, capped by `--max-user-token-lifetime`. Shown once, kept as a keyed hash.")
                .can_miss()
                .ok(ok(&[("xtoken", string()), ("token", string()), ("expires", json!({"type": "integer"}))])),
            access::xtoken_for_user,
        )
        .op(
            method!("XTokenCreateForRole", "An access token of a role (v2, root)")
                .fields(&args(&[("roleid", id(), false), ("rolename", string(), false), ("finaltime", time(), false), ("slidingtime", time(), false)]))
                .describe("`roleid` or `rolename`, `finaltime` (or `slidingtime`): 10 minutes by default, capped by `--max-user-token-lifetime`. What it may do is what the role's policies allow, in v2 methods only. Shown once, kept as a keyed hash.")
                .can_miss()
                .ok(ok(&[("xtoken", string()), ("expires", json!({"type": "integer"}))])),
            access::xtoken_for_role,
        )
        .section("v2 tenants")
        .op(
            method!("TenantCreate", "Create a tenant (v2, main tenant root)")
                .fields(&args(&[("tenantname", string(), true), ("tenantorg", string(), true), ("email", string(), false)]))
                .describe("`tenantname` (`[a-z0-9]`, 2–64), `tenantorg`, `email` (accepted, not kept). Its own keys, rows and audit chain; answers its `tenantid` and admin token `xtoken`, shown once. 409 `Duplicate tenant name`.")
                .conflict()
                .ok(ok(&[("tenantid", json!({"type": "integer"})), ("tenantname", string()), ("xtoken", string())])),
            tenants::create,
        )
        .op(
            method!("TenantGet", "A tenant's name and organisation (v2)")
                .fields(&args(&[("tenantid", id(), true)]))
                .describe("`tenantid` (number or numeric text). The main tenant's root: any; a tenant's admin: its own.")
                .can_miss()
                .ok(ok(&[("tenantid", json!({"type": "integer"})), ("tenantname", string()), ("tenantorg", string())])),
            tenants::get,
        )
        .op(
            method!("TenantUpdate", "Rename a tenant or change its organisation (v2)")
                .fields(&args(&[("tenantid", id(), false), ("tenantname", string(), false), ("tenantorg", string(), false), ("email", string(), false)]))
                .describe("`tenantid` (default: the calling tenant), `tenantname`, `tenantorg`.")
                .can_miss()
                .conflict()
                .ok(ok(&[])),
            tenants::update,
        )
        .op(
            method!("TenantDelete", "Delete a tenant by crypto-shredding (v2, main tenant root)")
                .fields(&args(&[("tenantid", id(), true)]))
                .describe("`tenantid`. Its key ring and every row it holds are removed in one commit; audited in the main tenant's log.")
                .can_miss()
                .ok(ok(&[])),
            tenants::delete,
        )
        .op(
            method!("TenantListTenants", "The tenants (v2, main tenant root)")
                .fields(&args(&page()))
                .describe("`offset`, `limit`. The main tenant (id 1, `default`) first.")
                .ok(rows_schema()),
            tenants::list,
        )
        .section("v2 system")
        .op(
            method!("SystemGetSystemStats", "How much the vault holds (v2, root)")
                .fields(&args(&[]))
                .describe("No arguments. Counts only: `numusers` (erased people not counted), `numtenants`, `numtokens`, `numsessions`.")
                .ok(ok(&[("stats", json!({"type": "object", "properties": {
                    "numusers": {"type": "integer"}, "numtenants": {"type": "integer"},
                    "numtokens": {"type": "integer"}, "numsessions": {"type": "integer"}}}))])),
            system::stats,
        )
        .op(
            method!("SystemGetUserProfiles", "A person's profiles across tenants (v2, main root, unlocked)")
                .fields(&who(&[("unlockuuid", string(), true), ("tenantid", id(), false), ("tenantname", string(), false)]))
                .describe("`mode` (`token` only with a tenant), `identity`, `unlockuuid`, `tenantid` or `tenantname` (default: every tenant): `rows` [{`tenantid`, `tenantname`, `token`, `profile`}], each read audited in its tenant.")
                .can_miss()
                .ok(ok(&[("total", json!({"type": "integer"})), ("rows", json!({"type": "array", "items": object()}))])),
            system::get_profiles,
        )
        .op(
            method!("SystemSearchUserProfiles", "Fuzzy search of people across tenants (v2, main root, unlocked)")
                .fields(&args(&[("identity", string(), true), ("unlockuuid", string(), true), ("limit", json!({"type": "integer", "minimum": 1}), false)]))
                .describe("`identity`, `unlockuuid`, `limit` (per tenant, 1–100): `UserSearch` in every tenant. `rows` [{`tenantid`, `tenantname`, `token`, `profile`, `score`}], each tenant's best first, the main tenant first.")
                .ok(ok(&[("total", json!({"type": "integer"})), ("rows", json!({"type": "array", "items": object()}))])),
            system::search_profiles,
        )
        .op(
            method!("SystemDeleteUserProfiles", "Soft-delete a person's profiles, across tenants (v2, main root, unlocked)")
                .fields(&who(&[("unlockuuid", string(), true), ("tenantid", id(), false), ("tenantname", string(), false)]))
                .describe("`mode` (`token` only with a tenant), `identity`, `unlockuuid`, `tenantid` or `tenantname` (default: every tenant). Each profile found leaves every lookup at once and stays restorable, under the person's key, for `--soft-delete-grace` (30 days); then it is erased with a signed receipt. `rows` [{`token`, `tenantid`, `tenantname`}].")
                .can_miss()
                .ok(ok(&[("total", json!({"type": "integer"})), ("rows", json!({"type": "array", "items": object()}))])),
            system::delete_profiles,
        )
        .op(
            method!("SystemRestoreUserProfile", "Restore a soft-deleted profile (v2, main root, unlocked)")
                .fields(&args(&[("token", string(), true), ("unlockuuid", string(), true), ("tenantid", id(), false), ("tenantname", string(), false)]))
                .describe("`token`, `unlockuuid`, `tenantid` or `tenantname` (default: the main tenant). The profile comes back with its lookups; 409 when one of its lookup values now belongs to someone else, 404 once erased.")
                .can_miss()
                .conflict()
                .ok(ok(&[("result", string()), ("token", string()), ("profile", object())])),
            system::restore_profile,
        )
        .op(
            method!("SystemGetUserReport", "Everything held about a person, as JSON (v2)")
                .fields(&who(&[]))
                .describe("`mode`, `identity`. The data subject's export (GDPR Articles 15 and 20): profile, app documents, consents, requests, sessions and the newest 1000 audit events about them. Root, or the person; audited.")
                .can_miss()
                .ok(ok(&[("report", object())])),
            system::user_report,
        )
        .op(
            method!("SystemGetUserHTMLReport", "Everything held about a person, as an HTML page (v2)")
                .fields(&who(&[]))
                .describe("`mode`, `identity`. SystemGetUserReport's export as a self-contained page (values escaped, no script). Root, or the person; audited.")
                .can_miss()
                .ok(ok(&[("html", string())])),
            system::user_html_report,
        )
        .section("v2 sessions and shared records")
        .op(
            method!("SessionUpsert", "Store a session (v2, root)")
                .fields(&args(&[("sessionuuid", string(), true), ("sessiondata", object(), true), ("finaltime", time(), false), ("slidingtime", time(), false)]))
                .describe("`sessionuuid`, `sessiondata` (object; a `login`, `email`, `phone` or `token` in it links the person), `finaltime`.")
                .ok(ok(&[])),
            sessions::upsert,
        )
        .op(
            method!("SessionGet", "Read a session (v2)")
                .fields(&args(&[("sessionuuid", string(), true)]))
                .describe("`sessionuuid`.")
                .can_miss()
                .ok(ok(&[("sessiondata", object())])),
            sessions::get,
        )
        .op(
            method!("SessionDelete", "Delete a session (v2, root)")
                .fields(&args(&[("sessionuuid", string(), true)]))
                .describe("`sessionuuid`.")
                .ok(ok(&[])),
            sessions::delete,
        )
        .op(
            method!("SessionListUserSessions", "A person's sessions (v2)")
                .fields(&who(&page()))
                .describe("`mode`, `identity`, `offset`, `limit` (default 10; outside 1–100: 100).")
                .can_miss()
                .ok(rows_schema()),
            sessions::list_of_user,
        )
        .op(
            method!("SharedRecordCreate", "A time-limited view of a person's data for a partner (v2)")
                .fields(&who(&[("fields", string(), false), ("partner", string(), false), ("appname", string(), false), ("finaltime", time(), false)]))
                .describe("`mode`, `identity`, `fields` (comma-separated; all when absent), `partner`, `appname` (share app data), `finaltime`.")
                .can_miss()
                .ok(ok(&[("recorduuid", string())])),
            sessions::share,
        )
        .op(
            method!("SharedRecordGet", "Read a shared record (v2; the id is the capability)")
                .fields(&args(&[("recorduuid", string(), true)]))
                .auth(Auth::Capability)
                .describe("`recorduuid`. No token: an unknown id is a failed attempt of the client address.")
                .can_miss()
                .ok(ok(&[("data", object()), ("appname", string())])),
            sessions::get_shared,
        )
}

/// An argument's schema: `(name, schema, required)`.
type Field = (&'static str, Value, bool);

/// `fields` with `request_metadata`, which every method accepts.
fn args(fields: &[Field]) -> Vec<Field> {
    let mut all = fields.to_vec();
    all.push(("request_metadata", object(), false));
    all
}

/// `mode` and `identity`, then `fields`.
fn who(fields: &[Field]) -> Vec<Field> {
    let mut all = vec![("mode", mode(), true), ("identity", identity(), true)];
    all.extend_from_slice(fields);
    args(&all)
}

/// A token type.
fn token_type() -> Value {
    json!({"enum": ["creditcard", "email", "text"]})
}

/// `fields` with the options of a tokenization.
fn token_options(fields: &[Field]) -> Vec<Field> {
    let mut all = fields.to_vec();
    all.push(("unique", json!({"type": "boolean"}), false));
    all.push(("slidingtime", time(), false));
    all.push(("finaltime", time(), false));
    all.push((
        "keepfirst",
        json!({"type": "integer", "minimum": 0, "maximum": 6}),
        false,
    ));
    all.push((
        "keeplast",
        json!({"type": "integer", "minimum": 0, "maximum": 4}),
        false,
    ));
    all
}

/// `offset` and `limit`.
fn page() -> Vec<Field> {
    vec![("offset", id(), false), ("limit", id(), false)]
}

fn mode() -> Value {
    json!({"enum": ["token", "login", "email", "phone", "custom"]})
}

/// A person's identity: text, or a number (the clients send phone numbers so).
fn identity() -> Value {
    json!({"oneOf": [{"type": "string", "minLength": 1}, {"type": "number"}]})
}

/// A whole number, or its decimal text.
fn id() -> Value {
    json!({"oneOf": [{"type": "integer"}, {"type": "string", "pattern": "^[0-9]+$"}]})
}

/// A duration (`30d`, `12m`, `1y`, seconds) or a Unix time.
fn time() -> Value {
    json!({"oneOf": [{"type": "integer", "minimum": 0}, {"type": "string"}]})
}

/// The fields of a legal basis (with `newbrief` for an update).
fn basis(update: bool) -> Vec<Field> {
    let mut f = vec![("brief", string(), true)];
    if update {
        f.push(("newbrief", string(), false));
    }
    for name in [
        "status",
        "module",
        "fulldesc",
        "shortdesc",
        "basistype",
        "requiredmsg",
    ] {
        f.push((name, string(), false));
    }
    f.push(("requiredflag", json!({"type": "boolean"}), false));
    f.push(("usercontrol", json!({"type": "boolean"}), false));
    f
}

/// The fields of a processing activity (with `newactivity` for an update).
fn activity(update: bool) -> Vec<Field> {
    let mut f = vec![("activity", string(), true)];
    if update {
        f.push(("newactivity", string(), false));
    }
    for name in ["title", "script", "fulldesc", "applicableto"] {
        f.push((name, string(), false));
    }
    f
}

/// `{status, total, rows}`.
fn rows_schema() -> Value {
    ok(&[
        ("total", json!({"type": "integer"})),
        ("rows", json!({"type": "array", "items": object()})),
    ])
}

/// `{"status":"ok"}`, or the DPO request a user's own change became: its
/// `requestuuid` (and v1's `rtoken`), and `result` (`request-created`, or
/// `request-exists` when the same request was already open).
fn done_or_requested(o: Outcome) -> Response {
    match o {
        Outcome::Done(_) => ok_fields(&[]),
        Outcome::Requested { rtoken, existed } => ok_fields(&[
            (
                "result",
                Value::from(if existed {
                    "request-exists"
                } else {
                    "request-created"
                }),
            ),
            ("requestuuid", Value::from(rtoken.clone())),
            ("rtoken", Value::from(rtoken)),
        ]),
    }
}

/// A `*Request` method's answer: the request it filed.
fn requested(o: Outcome) -> Reply {
    match o {
        Outcome::Requested { .. } => Ok(done_or_requested(o)),
        Outcome::Done(_) => Err(Error::internal("a request method carried the change out").into()),
    }
}

/// What a `*Request` method answers.
fn requested_schema() -> Value {
    ok(&[
        ("requestuuid", string()),
        ("rtoken", string()),
        (
            "result",
            json!({"enum": ["request-created", "request-exists"]}),
        ),
    ])
}

/// The v2 router: [`api`]'s methods, and a JSON 404 for any other `/v2/…`.
pub fn routes(state: AppState) -> Router<AppState> {
    let (router, _) = api().into_parts();
    router
        .route("/v2/{*method}", any(unknown))
        .layer(axum::middleware::from_fn(pro_messages))
        .layer(axum::middleware::from_fn_with_state(state, record_refusals))
        // The method is what a role token's policies are asked about.
        .layer(axum::middleware::from_fn(
            |req: Request, next: axum::middleware::Next| async move {
                if let Some(method) = req.uri().path().strip_prefix("/v2/") {
                    strongbox_core::context::set_method(method);
                }
                next.run(req).await
            },
        ))
        // Each call's `request_metadata` reaches its audit events through this slot.
        .layer(axum::middleware::from_fn(
            |req: Request, next: axum::middleware::Next| {
                strongbox_core::context::with_request(next.run(req))
            },
        ))
}

/// Databunker Pro's wording of a refusal the core words as v1 does, for `method`
/// (`None`: keep it). The status stays; clients read `status` and show `message`.
fn pro_message(method: &str, message: &str) -> Option<String> {
    if let Some(index) = message.strip_prefix("duplicate index: ") {
        return Some(format!("Duplicate index: {index}"));
    }
    let text = match message {
        "access denied" => "Access denied",
        "bad uuid" => "Bad UUID",
        "not found" | "user record not found" => {
            let families = [
                ("LegalBasis", "The legal basis record was not found"),
                (
                    "ProcessingActivity",
                    "The processing activity was not found",
                ),
                ("Session", "The session was not found"),
                ("SharedRecord", "The shared record was not found"),
                ("UserRequest", "The user request was not found"),
                ("AuditGetEvent", "The audit event was not found"),
            ];
            families
                .iter()
                .find(|(prefix, _)| method.starts_with(prefix))
                .map_or("The user record was not found", |(_, text)| text)
        }
        _ => return None,
    };
    Some(text.to_string())
}

/// Rewrites the message of a v2 refusal in Databunker Pro's words (one place, so
/// the core keeps one wording and v1 keeps Databunker's).
async fn pro_messages(req: Request, next: axum::middleware::Next) -> Response {
    let method = req
        .uri()
        .path()
        .strip_prefix("/v2/")
        .unwrap_or("")
        .to_string();
    let resp = next.run(req).await;
    if !resp.status().is_client_error() {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    // Refusals are small JSON bodies; anything else passes as it came.
    let Ok(bytes) = axum::body::to_bytes(body, 64 * 1024).await else {
        return error_response(parts.status, "The request was refused");
    };
    let rewritten = serde_json::from_slice::<Value>(&bytes)
        .ok()
        .and_then(|mut v| {
            let new = pro_message(&method, v.get("message")?.as_str()?)?;
            v["message"] = Value::from(new);
            serde_json::to_vec(&v).ok()
        });
    match rewritten {
        Some(body) => {
            parts.headers.remove(axum::http::header::CONTENT_LENGTH);
            Response::from_parts(parts, axum::body::Body::from(body))
        }
        None => Response::from_parts(parts, axum::body::Body::from(bytes)),
    }
}

/// Records in the audit log a refusal by a role's policies that the refused
/// method did not record (it failed before writing an event): every decision of
/// a role's policies, allow or deny, ends up in the log with the policy behind it.
async fn record_refusals(
    axum::extract::State(state): axum::extract::State<AppState>,
    req: Request,
    next: axum::middleware::Next,
) -> Response {
    let (parts, body) = req.into_parts();
    let mut probe = parts.clone();
    let resp = next.run(Request::from_parts(parts, body)).await;
    if let Some((label, method)) = strongbox_core::context::unrecorded_refusal() {
        let written = match crate::extract::vault_for(&mut probe, &state).await {
            Ok(vault) => vault.record_policy_refusal(&label, &method).await,
            Err(_) => Err(Error::internal("no vault for a refused call")),
        };
        if let Err(e) = written {
            tracing::warn!(error = %e, "a refusal by policy could not be audited");
        }
    }
    resp
}

async fn unknown() -> Response {
    error_response(StatusCode::NOT_FOUND, "The API request was not found")
}

/// A v2 call's arguments: the body's fields (none: `{}`), without `request_metadata`,
/// once the tenant is checked.
pub struct Args(Map<String, Value>);

impl FromRequest<AppState> for Args {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> std::result::Result<Self, ApiError> {
        let limits = crate::extract::body_limits(state);
        let (parts, body) = req.into_parts();
        let args = crate::body::read_optional_object(&parts.headers, body, limits).await?;
        Ok(Args::with_metadata(args)?)
    }
}

impl Args {
    /// The arguments of a body already read: its `request_metadata` goes to the
    /// call's audit slot.
    fn with_metadata(mut args: Map<String, Value>) -> Result<Args> {
        match args.remove("request_metadata") {
            None | Some(Value::Null) => {}
            Some(md @ Value::Object(_)) => {
                let max = strongbox_core::context::MAX_METADATA_BYTES;
                if md.to_string().len() > max {
                    return Err(Error::bad_request(format!(
                        "request_metadata is too large (at most {max} bytes as JSON)"
                    )));
                }
                strongbox_core::context::set_request_metadata(md);
            }
            Some(_) => {
                return Err(Error::bad_request("request_metadata must be a JSON object"));
            }
        }
        Ok(Args(args))
    }
}

impl Args {
    /// Arguments from an object nested in a call (one item of a bulk call).
    fn of(fields: Map<String, Value>) -> Args {
        Args(fields)
    }

    /// The fields other than `skip`, `null` ones left out.
    fn fields_except(&self, skip: &[&str]) -> Map<String, Value> {
        self.0
            .iter()
            .filter(|(k, v)| !v.is_null() && !skip.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// A field, `null` counting as absent.
    fn get(&self, name: &str) -> Option<&Value> {
        self.0.get(name).filter(|v| !v.is_null())
    }

    fn missing(name: &str) -> Error {
        Error::bad_request(format!("Missing API request parameters: {name}"))
    }

    /// A required string field (a number is taken as its text, as Databunker's
    /// clients send numeric identities).
    fn text(&self, name: &str) -> Result<String> {
        match self.get(name) {
            None => Err(Self::missing(name)),
            Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
            Some(Value::Number(n)) => Ok(n.to_string()),
            Some(_) => Err(Error::bad_request(format!(
                "The {name} parameter has an incorrect format"
            ))),
        }
    }

    /// A required integer field: a JSON integer or numeric text, as the clients
    /// send ids.
    fn int(&self, name: &str) -> Result<i64> {
        let bad = || Error::bad_request(format!("The {name} parameter has an incorrect format"));
        match self.get(name) {
            None => Err(Self::missing(name)),
            Some(Value::Number(n)) => n.as_i64().ok_or_else(bad),
            Some(Value::String(s)) => s.trim().parse().map_err(|_| bad()),
            Some(_) => Err(bad()),
        }
    }

    /// A required object field, taken out of the arguments (no copy).
    fn take_object(&mut self, name: &str) -> Result<Map<String, Value>> {
        match self.0.remove(name) {
            None | Some(Value::Null) => Err(Self::missing(name)),
            Some(Value::Object(m)) => Ok(m),
            Some(_) => Err(Error::bad_request(format!(
                "The {name} parameter must be a JSON object"
            ))),
        }
    }

    /// A required object field.
    fn object(&self, name: &str) -> Result<Map<String, Value>> {
        match self.get(name) {
            None => Err(Self::missing(name)),
            Some(Value::Object(m)) => Ok(m.clone()),
            Some(_) => Err(Error::bad_request(format!(
                "The {name} parameter must be a JSON object"
            ))),
        }
    }

    /// A required field of any JSON type.
    fn value(&self, name: &str) -> Result<Value> {
        self.get(name).cloned().ok_or_else(|| Self::missing(name))
    }

    /// `offset` (default 0) and `limit` (default 10), numbers or numeric text; a
    /// limit outside 1–100 is 100, as in Databunker Pro.
    fn page(&self) -> Result<strongbox_core::Page> {
        let bad = |name: &str| {
            Error::bad_request(format!("The {name} parameter has an incorrect format"))
        };
        let number = |name: &str| -> Result<Option<i64>> {
            match self.get(name) {
                None => Ok(None),
                Some(Value::Number(n)) => n.as_i64().map(Some).ok_or_else(|| bad(name)),
                Some(Value::String(s)) => s.trim().parse().map(Some).map_err(|_| bad(name)),
                Some(_) => Err(bad(name)),
            }
        };
        let offset = number("offset")?.unwrap_or(0).max(0);
        let limit = match number("limit")? {
            None => 10,
            Some(l) if (1..=100).contains(&l) => l,
            Some(_) => 100,
        };
        strongbox_core::Page::parse(Some(&offset.to_string()), Some(&limit.to_string()))
    }

    /// `mode` and `identity`: who the call is about.
    fn person(&self) -> Result<(Mode, String)> {
        let mode = Mode::parse(&self.text("mode")?)
            .map_err(|_| Error::bad_request("The mode parameter has an incorrect format"))?;
        Ok((mode, self.text("identity")?))
    }
}
