//! v2 file vault methods (`FileCreate`, `FileGet`, `FileListUserFiles`,
//! `FileReplaceTags`, `FileDelete`, `BulkListFilesByTag`) over the core's `files`
//! service.
//!
//! `FileCreate` takes the content two ways: base64 in the JSON body (`filedata`,
//! as Databunker Pro's clients send it; the body may then be as large as
//! [`JSON_FILE_BODY_MAX`]), or streamed as the raw body
//! (`Content-Type: application/octet-stream`, the other arguments as a JSON object
//! in the `X-Bunker-File` header), which holds one chunk in memory whatever the
//! file's size. `FileGet` answers base64 in JSON, or with `"raw": true` the raw
//! bytes, streamed.

use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http_body::Frame;
use http_body_util::BodyExt;
use serde_json::{Map, Value, json};
use strongbox_core::expiry::requested_seconds;
use strongbox_core::files::{FileInfo, FileRef, NewFile, parse_tags};
use strongbox_core::{Error, ErrorKind, Result, Vault};

use super::bulk::unlocked;
use super::{Args, Reply};
use crate::AppState;
use crate::extract::{Caller, CallerToken, Tenant};
use crate::reply::ok_fields;

/// Largest JSON body `FileCreate` reads (base64 content), and largest file `FileGet`
/// answers in JSON: bigger files go raw.
pub const JSON_FILE_BODY_MAX: usize = 16 * 1024 * 1024;
/// The header that carries a streamed upload's arguments.
pub const FILE_ARGS_HEADER: &str = "x-bunker-file";

/// The description of a new file in `args`.
fn new_file(args: &Args, now: i64) -> Result<NewFile> {
    let seconds = |name: &str| -> Result<Option<i64>> {
        let s = requested_seconds(args.get(name), now).map_err(|_| {
            Error::bad_request(format!(
                "The {name} parameter has an incorrect format: use a duration like 30d, 12h, 1m (a month) or 1y, seconds, or a Unix time"
            ))
        })?;
        Ok(s.filter(|s| *s > 0))
    };
    let mimetype = match args.get("mimetype") {
        None => None,
        Some(_) => Some(args.text("mimetype")?),
    };
    Ok(NewFile {
        filename: args.text("filename")?,
        mimetype,
        tags: parse_tags(args.get("tags"))?,
        sliding: seconds("slidingtime")?,
        final_after: seconds("finaltime")?,
    })
}

/// `FileCreate {mode, identity, filename, filedata (base64), mimetype?, tags?,
/// slidingtime?, finaltime?}` → `{token, fileuuid, duplicate, tags}`; or the raw
/// content streamed, with the rest in the `X-Bunker-File` header.
pub async fn create(Tenant(state): Tenant, Caller(who): Caller, req: Request) -> Reply {
    let streamed = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/octet-stream"));
    let vault = &state.vault;
    let created = if streamed {
        let args = header_args(&req)?;
        let (mode, identity) = args.person()?;
        let new = new_file(&args, vault.now())?;
        let mut upload = vault.begin_file(&who, mode, &identity, new).await?;
        match stream_into(&state, req.into_body(), &mut upload).await {
            Ok(()) => upload.finish(vault).await?,
            Err(e) => {
                upload.abort(vault).await;
                return Err(e.into());
            }
        }
    } else {
        let limits = crate::body::BodyLimits {
            limit: json_body_limit(&state),
            ..crate::extract::body_limits(&state)
        };
        let (parts, body) = req.into_parts();
        let fields = crate::body::read_optional_object(&parts.headers, body, limits).await?;
        let mut args = Args::with_metadata(fields)?;
        let data = match args.0.remove("filedata") {
            Some(Value::String(s)) => STANDARD
                .decode(s.as_bytes())
                .map_err(|_| Error::bad_request("The filedata parameter is not valid base64"))?,
            None | Some(Value::Null) => return Err(Args::missing("filedata").into()),
            Some(_) => {
                return Err(
                    Error::bad_request("The filedata parameter must be base64 text").into(),
                );
            }
        };
        let (mode, identity) = args.person()?;
        let new = new_file(&args, vault.now())?;
        let mut upload = vault.begin_file(&who, mode, &identity, new).await?;
        match upload.write(vault, &data).await {
            Ok(()) => upload.finish(vault).await?,
            Err(e) => {
                upload.abort(vault).await;
                return Err(e.into());
            }
        }
    };
    Ok(ok_fields(&[
        ("token", Value::from(created.token)),
        ("fileuuid", Value::from(created.uuid)),
        ("duplicate", Value::Bool(created.duplicate)),
        ("tags", json!(created.tags)),
    ]))
}

/// The largest JSON body of a `FileCreate`: base64 of the largest file, within
/// [`JSON_FILE_BODY_MAX`], and never below the general body limit.
fn json_body_limit(state: &AppState) -> usize {
    let max_file = usize::try_from(state.vault.config().max_file_bytes).unwrap_or(usize::MAX);
    max_file
        .saturating_mul(4)
        .saturating_div(3)
        .saturating_add(64 * 1024)
        .min(JSON_FILE_BODY_MAX)
        .max(state.http.max_body_bytes)
}

/// The arguments of a streamed upload: a JSON object in `X-Bunker-File`.
fn header_args(req: &Request) -> Result<Args> {
    let text = req
        .headers()
        .get(FILE_ARGS_HEADER)
        .ok_or_else(|| {
            Error::bad_request(
                "a streamed FileCreate carries its arguments as a JSON object in the X-Bunker-File header",
            )
        })?
        .to_str()
        .map_err(|_| Error::bad_request("the X-Bunker-File header is not text"))?;
    let fields: Map<String, Value> = match serde_json::from_str(text) {
        Ok(Value::Object(m)) => m,
        _ => {
            return Err(Error::bad_request(
                "the X-Bunker-File header must be a JSON object",
            ));
        }
    };
    Args::with_metadata(fields)
}

/// Feeds a raw request body into `upload` as it arrives: each piece must come
/// within the body timeout of the one before.
async fn stream_into(
    state: &AppState,
    mut body: Body,
    upload: &mut strongbox_core::files::FileUpload,
) -> Result<()> {
    let timeout = state.http.body_read_timeout;
    loop {
        let frame = match tokio::time::timeout(timeout, body.frame()).await {
            Err(_) => {
                return Err(Error::new(
                    ErrorKind::RequestTimeout,
                    format!(
                        "the upload stalled for more than {} seconds",
                        timeout.as_secs()
                    ),
                ));
            }
            Ok(None) => return Ok(()),
            Ok(Some(Err(_))) => return Err(Error::bad_request("failed to read request body")),
            Ok(Some(Ok(frame))) => frame,
        };
        if let Ok(data) = frame.into_data() {
            upload.write(&state.vault, &data).await?;
        }
    }
}

/// Which file `args` names: `fileuuid`, else `filename`.
fn file_ref(args: &Args) -> Result<FileRef> {
    match (args.get("fileuuid"), args.get("filename")) {
        (Some(_), _) => Ok(FileRef::Uuid(args.text("fileuuid")?)),
        (None, Some(_)) => Ok(FileRef::Name(args.text("filename")?)),
        (None, None) => Err(Error::bad_request(
            "Missing API request parameters: fileuuid or filename",
        )),
    }
}

fn info_json(f: &FileInfo) -> Value {
    json!({
        "fileuuid": f.uuid,
        "filename": f.filename,
        "mimetype": f.mimetype,
        "size": f.size,
        "tags": f.tags,
        "doublehash": f.doublehash,
        "creationtime": f.created,
    })
}

/// `FileGet {mode, identity, fileuuid | filename, raw?}` → `{token, fileuuid,
/// filename, mimetype, size, tags, filedata}`, or the raw bytes streamed.
pub async fn get(Tenant(state): Tenant, Caller(who): Caller, args: Args) -> Reply {
    let (mode, identity) = args.person()?;
    let raw = match args.get("raw") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            return Err(Error::bad_request("The raw parameter must be true or false").into());
        }
    };
    let r = file_ref(&args)?;
    let vault = state.vault.clone();
    let (info, mut reader) = vault.open_file(&who, mode, &identity, &r).await?;
    if raw {
        return Ok(raw_response(vault, &info, reader));
    }
    if info.size > JSON_FILE_BODY_MAX as u64 {
        return Err(Error::bad_request(format!(
            "the file is {} bytes, more than a JSON answer holds ({JSON_FILE_BODY_MAX}): ask with \"raw\": true",
            info.size
        ))
        .into());
    }
    let mut content = zeroize::Zeroizing::new(Vec::with_capacity(info.size as usize));
    while let Some(chunk) = reader.next_chunk(&vault).await? {
        content.extend_from_slice(&chunk);
    }
    let fields = [
        ("token", Value::from(info.token.clone())),
        ("fileuuid", Value::from(info.uuid.clone())),
        ("filename", Value::from(info.filename.clone())),
        ("mimetype", Value::from(info.mimetype.clone())),
        ("size", Value::from(info.size)),
        ("tags", json!(info.tags)),
        ("filedata", Value::from(STANDARD.encode(&*content))),
    ];
    Ok(ok_fields(&fields))
}

/// The raw content, streamed a chunk at a time as it is opened.
fn raw_response(
    vault: std::sync::Arc<Vault>,
    info: &FileInfo,
    mut reader: strongbox_core::files::FileReader,
) -> Response {
    let (tx, rx) = tokio::sync::mpsc::channel::<std::result::Result<Bytes, std::io::Error>>(2);
    tokio::spawn(async move {
        loop {
            let item = match reader.next_chunk(&vault).await {
                Ok(Some(chunk)) => Ok(Bytes::copy_from_slice(&chunk)),
                Ok(None) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "a file could not be read to its end");
                    Err(std::io::Error::other("the file could not be read"))
                }
            };
            let failed = item.is_err();
            if tx.send(item).await.is_err() || failed {
                return;
            }
        }
    });
    let mut response = (StatusCode::OK, Body::new(ChannelBody(rx))).into_response();
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&info.mimetype) {
        headers.insert(header::CONTENT_TYPE, v);
    }
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(info.size));
    if let Ok(v) = HeaderValue::from_str(&content_disposition(&info.filename)) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    headers.insert(
        header::HeaderName::from_static("x-content-type-options"),
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// `attachment` with the name percent-encoded (RFC 6266 / 5987), so no name can
/// break the header.
fn content_disposition(name: &str) -> String {
    let mut encoded = String::new();
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            encoded.push(b as char);
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    format!("attachment; filename*=UTF-8''{encoded}")
}

/// A response body fed by a channel.
struct ChannelBody(tokio::sync::mpsc::Receiver<std::result::Result<Bytes, std::io::Error>>);

impl http_body::Body for ChannelBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<std::result::Result<Frame<Bytes>, std::io::Error>>> {
        self.0
            .poll_recv(cx)
            .map(|item| item.map(|r| r.map(Frame::data)))
    }
}

/// `FileListUserFiles {mode, identity, tag?}` (also `FileList`, and
/// `FileListByTag` with the tag required) → `{token, files: [...]}`.
pub async fn list(Tenant(state): Tenant, Caller(who): Caller, args: Args) -> Reply {
    let (mode, identity) = args.person()?;
    let tag = match args.get("tag") {
        None => None,
        Some(_) => Some(args.text("tag")?),
    };
    let (token, files) = state
        .vault
        .list_files(&who, mode, &identity, tag.as_deref())
        .await?;
    let files: Vec<Value> = files.iter().map(info_json).collect();
    Ok(ok_fields(&[
        ("token", Value::from(token)),
        ("files", Value::from(files)),
    ]))
}

/// `FileListByTag {mode, identity, tag}`: `FileListUserFiles` with the tag required.
pub async fn list_by_tag(tenant: Tenant, caller: Caller, args: Args) -> Reply {
    args.text("tag")?;
    list(tenant, caller, args).await
}

/// `FileReplaceTags {mode, identity, fileuuid, tags}` → `{tags}`.
pub async fn replace_tags(Tenant(state): Tenant, Caller(who): Caller, args: Args) -> Reply {
    let (mode, identity) = args.person()?;
    let tags = parse_tags(Some(&args.value("tags")?))?;
    let tags = state
        .vault
        .replace_file_tags(&who, mode, &identity, &args.text("fileuuid")?, tags)
        .await?;
    Ok(ok_fields(&[("tags", json!(tags))]))
}

/// `FileDelete {mode, identity, fileuuid}` → `{token}`.
pub async fn delete(Tenant(state): Tenant, Caller(who): Caller, args: Args) -> Reply {
    let (mode, identity) = args.person()?;
    let token = state
        .vault
        .delete_file(&who, mode, &identity, &args.text("fileuuid")?)
        .await?;
    Ok(ok_fields(&[("token", Value::from(token))]))
}

/// `BulkListFilesByTag {unlockuuid, tag, offset?, limit?}` → `{total, rows:
/// [{token, fileuuid, filename, mimetype, size, tags, doublehash, creationtime}]}`.
pub async fn bulk_list_by_tag(
    Tenant(state): Tenant,
    CallerToken(who, token): CallerToken,
    args: Args,
) -> Reply {
    unlocked(&state, &who, &token, &args).await?;
    let (total, files) = state
        .vault
        .bulk_list_files_by_tag(&who, &args.text("tag")?, args.page()?)
        .await?;
    let rows: Vec<Value> = files
        .iter()
        .map(|f| {
            let mut row = info_json(f);
            row["token"] = Value::from(f.token.clone());
            row
        })
        .collect();
    Ok(ok_fields(&[
        ("total", Value::from(total)),
        ("rows", Value::from(rows)),
    ]))
}
