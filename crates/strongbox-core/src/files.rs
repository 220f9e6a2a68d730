//! The file vault: a person's documents (KYC scans, signed forms) kept under the
//! same per-person key as their profile, so erasing the person erases their files.
//!
//! A file is one `file` record, owned by the person, and its content in `filechunk`
//! records of [`CHUNK`] bytes each (the last one shorter), also owned by the person.
//! Each chunk is sealed under the person's DEK with its file, position and whether
//! it is the last bound in the associated data, so chunks cannot be swapped,
//! reordered, dropped or cut short without the read failing. Content streams in and
//! out a chunk at a time: memory stays flat whatever the file's size.
//!
//! What is in the clear: the file's uuid, owner token, size, chunk count, times and
//! tags (tags are labels an application chooses, like `kyc`, and are what
//! `BulkListFilesByTag` matches on; they must never hold personal data). Sealed:
//! the file name, the media type and the content's digest (for duplicates).

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use strongbox_crypto::{Aad, Dek, new_record_token, parse_record_token};
use strongbox_store::{AuditEvent, RecordRow, StoreError, WriteOp};
use zeroize::Zeroizing;

use crate::error::{Error, ErrorKind, Result};
use crate::expiry::{Page, expiry, slid};
use crate::kinds::{Action, RecordKind};
use crate::principal::Principal;
use crate::subjects::{Mode, Subject};
use crate::vault::Vault;

/// Bytes of content per chunk record.
pub const CHUNK: usize = 1024 * 1024;
/// Tags a file carries at most.
pub const MAX_TAGS: usize = 16;
/// How long an upload may take before the sweeper treats it as abandoned.
const UPLOAD_WINDOW: i64 = 24 * 3600;

/// What a new file is, besides its content.
#[derive(Clone, Debug, Default)]
pub struct NewFile {
    pub filename: String,
    /// Guessed from the name when not given.
    pub mimetype: Option<String>,
    pub tags: Vec<String>,
    pub sliding: Option<i64>,
    pub final_after: Option<i64>,
}

/// A stored file, as listed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileInfo {
    pub uuid: String,
    /// The owner's record token.
    pub token: String,
    pub filename: String,
    pub mimetype: String,
    pub size: u64,
    pub tags: Vec<String>,
    /// SHA-256 of the content's SHA-256, hex (Databunker Pro's `doublehash`).
    pub doublehash: String,
    pub created: i64,
}

/// What `FileCreate` answers.
#[derive(Clone, Debug)]
pub struct FileCreated {
    pub token: String,
    pub uuid: String,
    pub tags: Vec<String>,
    /// The person already had this content: its file is returned, nothing stored.
    pub duplicate: bool,
}

/// Which file of a person a call names.
#[derive(Clone, Debug)]
pub enum FileRef {
    Uuid(String),
    /// The newest file of that name.
    Name(String),
}

/// The clear part of a file record.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct Meta {
    tags: Vec<String>,
    size: u64,
    chunks: u64,
    /// `false` while the content is being written.
    ready: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sliding: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    final_at: Option<i64>,
    /// When the upload was committed, in microseconds: orders files stored within
    /// the same second (the newest of a name wins).
    #[serde(default)]
    stored_us: i64,
}

/// Tags as stored: lower-cased, each `[a-z0-9][a-z0-9._-]{0,49}`, de-duplicated and
/// sorted, at most [`MAX_TAGS`]. From a list or a comma-separated string.
pub fn parse_tags(value: Option<&Value>) -> Result<Vec<String>> {
    let raw: Vec<String> = match value {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => s.split(',').map(str::to_string).collect(),
        Some(Value::Array(a)) => a
            .iter()
            .map(|t| {
                t.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| Error::bad_request("tags must be strings"))
            })
            .collect::<Result<_>>()?,
        Some(_) => {
            return Err(Error::bad_request(
                "tags must be a list of strings or a comma-separated string",
            ));
        }
    };
    let mut tags = Vec::new();
    for t in raw {
        let t = t.trim().to_ascii_lowercase();
        if t.is_empty() {
            continue;
        }
        let mut chars = t.chars();
        let ok = t.len() <= 50
            && chars
                .next()
                .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
            && chars.all(|c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-')
            });
        if !ok {
            return Err(Error::bad_request(
                "bad tag: each tag is 1 to 50 of a-z, 0-9, '.', '_', '-', starting with a letter or digit",
            ));
        }
        tags.push(t);
    }
    tags.sort();
    tags.dedup();
    if tags.len() > MAX_TAGS {
        return Err(Error::bad_request(format!(
            "a file carries at most {MAX_TAGS} tags"
        )));
    }
    Ok(tags)
}

/// One tag to filter by (a single tag: a comma is not split).
pub fn parse_tag(tag: &str) -> Result<String> {
    match parse_tags(Some(&Value::Array(vec![Value::from(tag)])))?.pop() {
        Some(t) if !tag.contains(',') => Ok(t),
        _ => Err(Error::bad_request("bad tag")),
    }
}

/// A file name: 1 to 255 characters, no control characters or path separators.
pub fn check_filename(name: &str) -> Result<()> {
    let n = name.chars().count();
    if n == 0
        || n > 255
        || name
            .chars()
            .any(|c| c.is_control() || c == '/' || c == '\\')
    {
        return Err(Error::bad_request(
            "bad filename: 1 to 255 characters, without control characters or slashes",
        ));
    }
    Ok(())
}

/// The media type of a name's extension, for files stored without one.
fn guess_mimetype(name: &str) -> &'static str {
    let ext = name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "pdf" => "application/pdf",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "tif" | "tiff" => "image/tiff",
        "txt" => "text/plain",
        "csv" => "text/csv",
        "json" => "application/json",
        "xml" => "application/xml",
        "zip" => "application/zip",
        "doc" => "application/msword",
        "docx" => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        _ => "application/octet-stream",
    }
}

fn check_mimetype(m: &str) -> Result<()> {
    let ok = (1..=255).contains(&m.len())
        && m.contains('/')
        && m.bytes().all(|b| b.is_ascii_graphic() || b == b' ');
    if ok {
        Ok(())
    } else {
        Err(Error::bad_request("bad mimetype"))
    }
}

/// The `meta` of a chunk record whose sealed bytes are in the file store.
pub const IN_FILE_STORE: &[u8] = b"file-store";

fn chunk_id(uuid: &str, seq: u64) -> String {
    format!("{uuid}/{seq:08}")
}

fn meta_of(row: &RecordRow) -> Result<Meta> {
    row.meta
        .as_deref()
        .and_then(|m| serde_json::from_slice(m).ok())
        .ok_or_else(|| Error::internal("a file record has no metadata"))
}

fn not_found() -> Error {
    Error::not_found("file not found")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// An upload in progress: content is written a chunk at a time as it arrives.
/// Call [`FileUpload::finish`] to commit it, or [`FileUpload::abort`] to drop it.
pub struct FileUpload {
    who: Principal,
    mode: Mode,
    subject: Subject,
    uuid: String,
    new: NewFile,
    buf: Zeroizing<Vec<u8>>,
    seq: u64,
    size: u64,
    sha: Sha256,
    max: u64,
}

impl Vault {
    fn chunk_aad(&self, uuid: &str, seq: u64, last: bool) -> Aad {
        let at = format!("{seq}{}", if last { ":last" } else { "" });
        Aad::new(&self.tenant, RecordKind::FileChunk.name(), uuid, &at)
    }

    /// Starts storing a file of person `{mode}/{identity}`: checks who may, and
    /// records the upload (so an abandoned one is swept with its chunks).
    pub async fn begin_file(
        &self,
        who: &Principal,
        mode: Mode,
        identity: &str,
        new: NewFile,
    ) -> Result<FileUpload> {
        check_filename(&new.filename)?;
        if let Some(m) = &new.mimetype {
            check_mimetype(m)?;
        }
        let action = Action::FileCreate.with([&mode.name()]);
        let subject = self.subject(who, &action, mode, identity).await?;
        let uuid = new_record_token();
        let now = self.now();
        let meta = Meta {
            tags: new.tags.clone(),
            size: 0,
            chunks: 0,
            ready: false,
            sliding: None,
            final_at: None,
            stored_us: 0,
        };
        self.store
            .write(WriteOp::PutRecord {
                tenant: self.tenant.clone(),
                record: RecordRow {
                    kind: RecordKind::File.name().into(),
                    id: uuid.clone(),
                    owner: Some(subject.token.clone()),
                    created: now,
                    updated: now,
                    expires: Some(now + UPLOAD_WINDOW),
                    version: 1,
                    meta: Some(serde_json::to_vec(&meta).map_err(Error::internal)?),
                    ..RecordRow::default()
                },
                expected_version: None,
            })
            .await?;
        Ok(FileUpload {
            who: who.clone(),
            mode,
            subject,
            uuid,
            new,
            buf: Zeroizing::new(Vec::with_capacity(CHUNK)),
            seq: 0,
            size: 0,
            sha: Sha256::new(),
            max: self.config.max_file_bytes,
        })
    }

    async fn put_chunk(&self, up: &FileUpload, plain: &[u8], last: bool) -> Result<()> {
        let started = std::time::Instant::now();
        let sealed = up
            .subject
            .dek
            .seal(&self.chunk_aad(&up.uuid, up.seq, last), plain)?;
        crate::vault::CRYPTO_TIMINGS.observe(started.elapsed());
        // With a file store the sealed bytes go there first, durably; the record
        // (committed after) says where they are.
        let (body, meta) = match &self.config.file_store {
            Some(dir) => {
                dir.put(&self.tenant, &up.uuid, up.seq, sealed).await?;
                (None, Some(IN_FILE_STORE.to_vec()))
            }
            None => (Some(sealed), None),
        };
        let now = self.now();
        self.store
            .write(WriteOp::PutRecord {
                tenant: self.tenant.clone(),
                record: RecordRow {
                    kind: RecordKind::FileChunk.name().into(),
                    id: chunk_id(&up.uuid, up.seq),
                    owner: Some(up.subject.token.clone()),
                    label: Some(up.uuid.clone()),
                    created: now,
                    updated: now,
                    version: 1,
                    body,
                    meta,
                    ..RecordRow::default()
                },
                expected_version: None,
            })
            .await?;
        Ok(())
    }

    /// The person's ready files, with their rows, newest first.
    async fn files_of(&self, subject: &Subject) -> Result<Vec<(FileInfo, RecordRow)>> {
        let now = self.now();
        let mut out = Vec::new();
        for row in self
            .store
            .records_of(&self.tenant, &subject.token, RecordKind::File.name())
            .await?
        {
            let meta = meta_of(&row)?;
            if !meta.ready || row.expires.is_some_and(|e| e <= now) {
                continue;
            }
            out.push((
                (row.created, meta.stored_us),
                self.file_info(&subject.dek, &row, &meta)?,
                row,
            ));
        }
        out.sort_by_key(|f| std::cmp::Reverse(f.0));
        Ok(out.into_iter().map(|(_, f, row)| (f, row)).collect())
    }

    fn file_info(&self, dek: &Dek, row: &RecordRow, meta: &Meta) -> Result<FileInfo> {
        let sealed = self.open_body(dek, row)?;
        let text = |k: &str| sealed[k].as_str().unwrap_or_default().to_string();
        Ok(FileInfo {
            uuid: row.id.clone(),
            token: row.owner.clone().unwrap_or_default(),
            filename: text("filename"),
            mimetype: text("mimetype"),
            size: meta.size,
            tags: meta.tags.clone(),
            doublehash: text("doublehash"),
            created: row.created,
        })
    }

    /// Deletes file `uuid`'s content and record, with `event` (one commit).
    async fn drop_file(&self, uuid: &str, event: Option<AuditEvent>) -> Result<()> {
        let mut ops = vec![
            WriteOp::DeleteLabelled {
                tenant: self.tenant.clone(),
                kind: RecordKind::FileChunk.name().into(),
                label: uuid.to_string(),
            },
            WriteOp::DeleteRecord {
                tenant: self.tenant.clone(),
                kind: RecordKind::File.name().into(),
                id: uuid.to_string(),
            },
        ];
        if let Some(audit) = event {
            ops.push(WriteOp::Audit {
                tenant: self.tenant.clone(),
                audit,
            });
        }
        self.store.write(WriteOp::Atomic(ops)).await?;
        if let Some(dir) = &self.config.file_store
            && let Err(e) = dir.remove(&self.tenant, uuid).await
        {
            tracing::warn!(error = %e, "a deleted file's chunks are left for the sweeper");
        }
        Ok(())
    }

    /// Deletes chunks in the file store whose file record is gone: a file erased
    /// with its owner, or one whose deletion could not remove them at once. (Sealed
    /// under a key that is gone or going, they could not be read anyway.)
    pub(crate) async fn purge_stray_chunks(&self) -> Result<()> {
        let Some(dir) = &self.config.file_store else {
            return Ok(());
        };
        for uuid in dir.files(&self.tenant).await? {
            let record = self
                .store
                .record(&self.tenant, RecordKind::File.name(), &uuid)
                .await?;
            if record.is_none() {
                dir.remove(&self.tenant, &uuid).await?;
            }
        }
        Ok(())
    }

    /// The live file `r` of `subject` and its metadata.
    async fn find_file(&self, subject: &Subject, r: &FileRef) -> Result<(FileInfo, RecordRow)> {
        match r {
            FileRef::Uuid(u) => {
                let uuid =
                    parse_record_token(u).ok_or_else(|| Error::bad_request("bad fileuuid"))?;
                let row = self
                    .store
                    .record(&self.tenant, RecordKind::File.name(), &uuid)
                    .await?
                    .filter(|row| row.owner.as_deref() == Some(subject.token.as_str()))
                    .ok_or_else(not_found)?;
                let meta = meta_of(&row)?;
                if !meta.ready || row.expires.is_some_and(|e| e <= self.now()) {
                    return Err(not_found());
                }
                Ok((self.file_info(&subject.dek, &row, &meta)?, row))
            }
            FileRef::Name(name) => {
                check_filename(name)?;
                self.files_of(subject)
                    .await?
                    .into_iter()
                    .find(|(f, _)| f.filename == *name)
                    .ok_or_else(not_found)
            }
        }
    }

    /// Opens file `r` of person `{mode}/{identity}` for reading (audited before
    /// anything is returned; a sliding expiry moves on). Read its content with
    /// [`FileReader::next_chunk`].
    pub async fn open_file(
        &self,
        who: &Principal,
        mode: Mode,
        identity: &str,
        r: &FileRef,
    ) -> Result<(FileInfo, FileReader)> {
        let action = Action::FileGet.with([&mode.name()]);
        let subject = self.subject(who, &action, mode, identity).await?;
        let (info, row) = self.find_file(&subject, r).await?;
        let meta = meta_of(&row)?;
        let now = self.now();
        let mut ops = vec![WriteOp::Audit {
            tenant: self.tenant.clone(),
            audit: self.new_event(who, action, Some(&subject.token), "ok"),
        }];
        if let Some(current) = row.expires
            && let Some(wanted) = slid(now, current, meta.sliding, meta.final_at)
        {
            ops.push(WriteOp::PutRecord {
                tenant: self.tenant.clone(),
                record: RecordRow {
                    expires: Some(wanted),
                    version: row.version + 1,
                    ..row.clone()
                },
                expected_version: Some(row.version),
            });
        }
        match self.store.write(WriteOp::Atomic(ops.clone())).await {
            Ok(()) => {}
            // Another read moved the expiry first: the audit event alone.
            Err(StoreError::Stale) => {
                ops.truncate(1);
                self.store.write(WriteOp::Atomic(ops)).await?;
            }
            Err(e) => return Err(e.into()),
        }
        let reader = FileReader {
            uuid: info.uuid.clone(),
            dek: subject.dek,
            chunks: meta.chunks,
            next: 0,
        };
        Ok((info, reader))
    }

    /// The files of person `{mode}/{identity}`, newest first; only those tagged
    /// `tag` when given.
    pub async fn list_files(
        &self,
        who: &Principal,
        mode: Mode,
        identity: &str,
        tag: Option<&str>,
    ) -> Result<(String, Vec<FileInfo>)> {
        let tag = tag.map(parse_tag).transpose()?;
        let action = Action::FileList.with([&mode.name()]);
        let subject = self.subject(who, &action, mode, identity).await?;
        let files: Vec<FileInfo> = self
            .files_of(&subject)
            .await?
            .into_iter()
            .map(|(f, _)| f)
            .filter(|f| tag.as_ref().is_none_or(|t| f.tags.contains(t)))
            .collect();
        self.audit(self.new_event(who, action, Some(&subject.token), "ok"))
            .await?;
        Ok((subject.token, files))
    }

    /// Replaces the tags of file `uuid` of person `{mode}/{identity}`: the stored set.
    pub async fn replace_file_tags(
        &self,
        who: &Principal,
        mode: Mode,
        identity: &str,
        uuid: &str,
        tags: Vec<String>,
    ) -> Result<Vec<String>> {
        let action = Action::FileChange.with([&mode.name()]);
        let subject = self.subject(who, &action, mode, identity).await?;
        for _ in 0..16 {
            let (_, row) = self
                .find_file(&subject, &FileRef::Uuid(uuid.to_string()))
                .await?;
            let mut meta = meta_of(&row)?;
            meta.tags = tags.clone();
            let version = row.version;
            let record = RecordRow {
                updated: self.now(),
                version: version + 1,
                meta: Some(serde_json::to_vec(&meta).map_err(Error::internal)?),
                ..row
            };
            let ops = vec![
                WriteOp::PutRecord {
                    tenant: self.tenant.clone(),
                    record,
                    expected_version: Some(version),
                },
                WriteOp::Audit {
                    tenant: self.tenant.clone(),
                    audit: self.new_event(who, action.clone(), Some(&subject.token), "ok"),
                },
            ];
            match self.store.write(WriteOp::Atomic(ops)).await {
                Ok(()) => return Ok(tags),
                Err(StoreError::Stale) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::new(
            ErrorKind::Unavailable,
            "the file is changing too fast: try again",
        ))
    }

    /// Deletes file `uuid` of person `{mode}/{identity}` (its content with it):
    /// the person's token.
    pub async fn delete_file(
        &self,
        who: &Principal,
        mode: Mode,
        identity: &str,
        uuid: &str,
    ) -> Result<String> {
        let action = Action::FileDelete.with([&mode.name()]);
        let subject = self.subject(who, &action, mode, identity).await?;
        let (info, _) = self
            .find_file(&subject, &FileRef::Uuid(uuid.to_string()))
            .await?;
        let event = self.new_event(who, action, Some(&subject.token), "ok");
        self.drop_file(&info.uuid, Some(event)).await?;
        Ok(subject.token)
    }

    /// Files tagged `tag` across the tenant (behind the bulk unlock, checked by
    /// the caller), by uuid: (total, a page of them). Each listed file is an
    /// audited read of its metadata.
    pub async fn bulk_list_files_by_tag(
        &self,
        who: &Principal,
        tag: &str,
        page: Page,
    ) -> Result<(u64, Vec<FileInfo>)> {
        who.may_list()?;
        let tag = parse_tag(tag)?;
        let now = self.now();
        let mut matching = Vec::new();
        for row in self
            .store
            .records_of_kind(&self.tenant, RecordKind::File.name())
            .await?
        {
            let meta = meta_of(&row)?;
            if meta.ready && row.expires.is_none_or(|e| e > now) && meta.tags.contains(&tag) {
                matching.push((row, meta));
            }
        }
        let total = matching.len() as u64;
        let mut out = Vec::new();
        let mut events = Vec::new();
        for (row, meta) in matching.into_iter().skip(page.offset).take(page.limit) {
            let Some(owner) = row.owner.as_deref() else {
                continue;
            };
            let Some(user) = self.store.user(&self.tenant, owner).await? else {
                continue;
            };
            if let Principal::Role(grant) = who
                && self
                    .role_may_reach(grant, owner, &crate::policy::Part::Files)
                    .await
                    .is_err()
            {
                continue;
            }
            let Some(dek) = self.dek_of(&user)? else {
                continue;
            };
            events.push(WriteOp::Audit {
                tenant: self.tenant.clone(),
                audit: self.new_event(who, Action::FileList.with([&"tag"]), Some(owner), "ok"),
            });
            out.push(self.file_info(&dek, &row, &meta)?);
        }
        if !events.is_empty() {
            self.store.write(WriteOp::Atomic(events)).await?;
        }
        Ok((total, out))
    }

    /// Deletes files whose time is up and uploads abandoned half-way, with their
    /// content.
    pub(crate) async fn purge_expired_files(&self) -> Result<()> {
        loop {
            let due = self
                .store
                .records_due_first(&self.tenant, RecordKind::File.name(), self.now(), 100)
                .await?;
            if due.is_empty() {
                return Ok(());
            }
            for row in &due {
                let event = match meta_of(row) {
                    Ok(m) if m.ready => Some(self.new_event(
                        &Principal::System,
                        Action::FileExpire,
                        row.owner.as_deref(),
                        "ok",
                    )),
                    _ => None,
                };
                self.drop_file(&row.id, event).await?;
            }
            if due.len() < 100 {
                return Ok(());
            }
        }
    }
}

impl FileUpload {
    /// Appends `data`, sealing and storing each whole chunk (the last one waits
    /// for [`FileUpload::finish`], which marks it last).
    pub async fn write(&mut self, vault: &Vault, mut data: &[u8]) -> Result<()> {
        self.size += data.len() as u64;
        if self.size > self.max {
            return Err(Error::new(
                ErrorKind::PayloadTooLarge,
                format!("the file is larger than {} bytes", self.max),
            ));
        }
        self.sha.update(data);
        while !data.is_empty() {
            let room = CHUNK - self.buf.len();
            let (now, later) = data.split_at(room.min(data.len()));
            self.buf.extend_from_slice(now);
            data = later;
            // A full chunk is stored once more content follows it.
            if self.buf.len() == CHUNK && !data.is_empty() {
                self.flush(vault, false).await?;
            }
        }
        Ok(())
    }

    async fn flush(&mut self, vault: &Vault, last: bool) -> Result<()> {
        vault.put_chunk(&*self, &self.buf, last).await?;
        self.buf.clear();
        self.seq += 1;
        Ok(())
    }

    /// Commits the file (audited), or finds that the person already has this
    /// content and drops the upload.
    pub async fn finish(mut self, vault: &Vault) -> Result<FileCreated> {
        // The chunk held back is full only when more content was expected.
        self.flush(vault, true).await?;
        let digest = std::mem::take(&mut self.sha).finalize();
        let doublehash = hex(&Sha256::digest(digest));
        let action = Action::FileCreate.with([&self.mode.name()]);
        let token = self.subject.token.clone();
        if let Some((same, _)) = vault
            .files_of(&self.subject)
            .await?
            .into_iter()
            .find(|(f, _)| f.doublehash == doublehash)
        {
            let event = vault.new_event(&self.who, action, Some(&token), "duplicate");
            vault.drop_file(&self.uuid, None).await?;
            vault.audit(event).await?;
            return Ok(FileCreated {
                token,
                uuid: same.uuid,
                tags: same.tags,
                duplicate: true,
            });
        }
        let row = vault
            .store
            .record(&vault.tenant, RecordKind::File.name(), &self.uuid)
            .await?
            .ok_or_else(|| Error::new(ErrorKind::Conflict, "the upload was swept: try again"))?;
        let now = vault.now();
        let (expires, final_at) = expiry(now, self.new.sliding, self.new.final_after);
        let mimetype = self
            .new
            .mimetype
            .clone()
            .unwrap_or_else(|| guess_mimetype(&self.new.filename).to_string());
        let sealed = json!({
            "filename": self.new.filename,
            "mimetype": mimetype,
            "doublehash": doublehash,
        });
        let meta = Meta {
            tags: self.new.tags.clone(),
            size: self.size,
            chunks: self.seq,
            ready: true,
            sliding: self.new.sliding,
            final_at,
            stored_us: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX)),
        };
        let record = RecordRow {
            created: now,
            updated: now,
            expires,
            version: row.version + 1,
            meta: Some(serde_json::to_vec(&meta).map_err(Error::internal)?),
            body: Some(vault.seal_body(
                &self.subject.dek,
                RecordKind::File.name(),
                &self.uuid,
                &sealed,
            )?),
            ..row.clone()
        };
        vault
            .store
            .write(WriteOp::Atomic(vec![
                WriteOp::PutRecord {
                    tenant: vault.tenant.clone(),
                    record,
                    expected_version: Some(row.version),
                },
                WriteOp::Audit {
                    tenant: vault.tenant.clone(),
                    audit: vault.new_event(&self.who, action, Some(&token), "ok"),
                },
            ]))
            .await?;
        Ok(FileCreated {
            token,
            uuid: self.uuid,
            tags: self.new.tags,
            duplicate: false,
        })
    }

    /// Drops an upload that failed: what was stored of it is deleted.
    pub async fn abort(self, vault: &Vault) {
        if let Err(e) = vault.drop_file(&self.uuid, None).await {
            tracing::warn!(error = %e, "an abandoned upload is left for the sweeper");
        }
    }
}

/// Reads a file's content a chunk at a time.
pub struct FileReader {
    uuid: String,
    dek: Dek,
    chunks: u64,
    next: u64,
}

impl FileReader {
    /// The next chunk of content, `None` after the last.
    pub async fn next_chunk(&mut self, vault: &Vault) -> Result<Option<Zeroizing<Vec<u8>>>> {
        if self.next >= self.chunks {
            return Ok(None);
        }
        let seq = self.next;
        let row = vault
            .store
            .record(
                &vault.tenant,
                RecordKind::FileChunk.name(),
                &chunk_id(&self.uuid, seq),
            )
            .await?
            .ok_or_else(|| Error::not_found("file not found (deleted while read)"))?;
        let body = match (row.body, &vault.config.file_store) {
            (Some(body), _) => body,
            (None, Some(dir)) if row.meta.as_deref() == Some(IN_FILE_STORE) => dir
                .get(&vault.tenant, &self.uuid, seq)
                .await?
                .ok_or_else(|| Error::internal("a file chunk is missing from the file store"))?,
            (None, None) if row.meta.as_deref() == Some(IN_FILE_STORE) => {
                return Err(Error::new(
                    ErrorKind::Unavailable,
                    "the file's content is in a file store: start the vault with --file-store",
                ));
            }
            (None, _) => return Err(Error::internal("a file chunk has no content")),
        };
        let last = seq + 1 == self.chunks;
        let started = std::time::Instant::now();
        let plain = self
            .dek
            .open(&vault.chunk_aad(&self.uuid, seq, last), &body)?;
        crate::vault::CRYPTO_TIMINGS.observe(started.elapsed());
        self.next += 1;
        Ok(Some(plain))
    }
}
