//! Tenants: created, read, renamed, listed and deleted over v2, and isolated from
//! each other for every method family, on every backend.

use serde_json::{Value, json};

use crate::backend_tests;
use crate::harness::{Backend, Body, Reply, Server, StoreLoc};

backend_tests!(
    tenants_are_created_managed_and_deleted,
    a_tenant_sees_only_its_own_data,
    tenants_survive_restarts_and_root_key_rotation,
    the_cli_creates_tenants,
    webhooks_stay_the_main_tenants,
);

/// A v2 call in `tenant` (by `X-Bunker-Tenant`; `None`: the main tenant) with
/// `token`.
fn call(s: &Server, tenant: Option<&str>, token: &str, method: &str, body: Value) -> Reply {
    let headers: Vec<(&str, &str)> = tenant.map(|t| ("X-Bunker-Tenant", t)).into_iter().collect();
    s.call_with(
        Some(token),
        "POST",
        &format!("/v2/{method}"),
        &headers,
        Body::Json(body),
    )
}

/// Creates tenant `name`: its id and admin token.
fn create(s: &Server, name: &str) -> (i64, String) {
    let r = call(
        s,
        None,
        &s.token,
        "TenantCreate",
        json!({"tenantname": name, "tenantorg": format!("{name} Ltd")}),
    )
    .expect(200);
    assert_eq!(r["tenantname"], name);
    (
        r["tenantid"].as_i64().unwrap(),
        r["xtoken"].as_str().unwrap().to_string(),
    )
}

fn text(v: &Value, key: &str) -> String {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("no {key} in {v}"))
        .to_string()
}

fn tenants_are_created_managed_and_deleted(b: &Backend) {
    let s = Server::start(b);
    let (acme, a) = create(&s, "acme");
    assert_eq!(acme, 2);
    let (beta, bt) = create(&s, "beta");
    assert_eq!(beta, 3);
    // Names: unique, `[a-z0-9]`, not the main tenant's.
    let r = call(
        &s,
        None,
        &s.token,
        "TenantCreate",
        json!({"tenantname": "acme", "tenantorg": "x"}),
    );
    assert_eq!(r.status, 409);
    assert_eq!(r.json["message"], "Duplicate tenant name");
    for bad in ["Acme", "a-b", "x", "default", ""] {
        let r = call(
            &s,
            None,
            &s.token,
            "TenantCreate",
            json!({"tenantname": bad, "tenantorg": "x"}),
        );
        assert_eq!(r.status, 400, "{bad}: {}", r.json);
    }
    // Only the main tenant's root creates, lists and deletes.
    let r = call(
        &s,
        Some("acme"),
        &a,
        "TenantCreate",
        json!({"tenantname": "evil", "tenantorg": "x"}),
    );
    assert_eq!(r.status, 403, "{}", r.json);
    assert_eq!(
        call(&s, Some("acme"), &a, "TenantListTenants", json!({})).status,
        403
    );
    assert_eq!(
        call(
            &s,
            Some("acme"),
            &a,
            "TenantDelete",
            json!({"tenantid": beta})
        )
        .status,
        403
    );
    // A tenant's admin reads its own entry, not another's; ids as numbers or text.
    let own = call(&s, Some("acme"), &a, "TenantGet", json!({"tenantid": "2"})).expect(200);
    assert_eq!(own["tenantname"], "acme");
    assert_eq!(own["tenantorg"], "acme Ltd");
    assert_eq!(
        call(&s, Some("acme"), &a, "TenantGet", json!({"tenantid": beta})).status,
        403
    );
    assert_eq!(
        call(&s, None, &s.token, "TenantGet", json!({"tenantid": 99})).status,
        404
    );
    assert_eq!(
        call(&s, None, &s.token, "TenantGet", json!({"tenantid": "x"})).status,
        400
    );
    let list = call(&s, None, &s.token, "TenantListTenants", json!({})).expect(200);
    assert_eq!(list["total"], 3, "{list}");
    assert_eq!(
        list["rows"][0],
        json!({"tenantid": 1, "tenantname": "default", "tenantorg": ""})
    );
    assert_eq!(list["rows"][2]["tenantname"], "beta");
    // A tenant's admin changes its organisation (no id: the calling tenant) but may
    // not rename it: a name routes requests (the `Host` sub-domain), so only the
    // main tenant's root names tenants.
    call(
        &s,
        Some("acme"),
        &a,
        "TenantUpdate",
        json!({"tenantorg": "Acme Corp"}),
    )
    .expect(200);
    let r = call(
        &s,
        Some("acme"),
        &a,
        "TenantUpdate",
        json!({"tenantname": "vault"}),
    );
    assert_eq!(r.status, 403, "{}", r.json);
    // Renamed by the main root: the old name no longer resolves, the new one does,
    // the token is the same.
    call(
        &s,
        None,
        &s.token,
        "TenantUpdate",
        json!({"tenantid": acme, "tenantname": "acmecorp"}),
    )
    .expect(200);
    let r = call(&s, Some("acme"), &a, "TenantGet", json!({"tenantid": acme}));
    assert_eq!(r.status, 404, "{}", r.json);
    assert_eq!(r.json["message"], "The tenant was not found");
    let own = call(
        &s,
        Some("acmecorp"),
        &a,
        "TenantGet",
        json!({"tenantid": acme}),
    )
    .expect(200);
    assert_eq!(own["tenantorg"], "Acme Corp");
    let r = call(
        &s,
        None,
        &s.token,
        "TenantUpdate",
        json!({"tenantid": acme, "tenantname": "beta"}),
    );
    assert_eq!(r.status, 409, "{}", r.json);
    // Deleting crypto-shreds: its key ring and every row go, its token stops
    // working, its name is free again, its id is not reused, and the main log says so.
    call(
        &s,
        Some("beta"),
        &bt,
        "UserCreate",
        json!({"profile": {"email": "b@example.com"}}),
    )
    .expect(200);
    let key_rows = || {
        s.store
            .sql("SELECT COUNT(*) FROM key_ring WHERE tenant = 't3'")
    };
    assert_ne!(key_rows().trim(), "0");
    call(
        &s,
        None,
        &s.token,
        "TenantDelete",
        json!({"tenantid": beta}),
    )
    .expect(200);
    for table in ["key_ring", "users", "user_index", "records", "audit"] {
        let n = s
            .store
            .sql(&format!("SELECT COUNT(*) FROM {table} WHERE tenant = 't3'"));
        assert_eq!(
            n.trim(),
            "0",
            "{table} still holds the deleted tenant's rows"
        );
    }
    let r = call(
        &s,
        Some("beta"),
        &bt,
        "UserGet",
        json!({"mode": "email", "identity": "b@example.com"}),
    );
    assert_eq!(r.status, 404, "{}", r.json);
    assert_eq!(
        call(
            &s,
            None,
            &s.token,
            "TenantDelete",
            json!({"tenantid": beta})
        )
        .status,
        404
    );
    assert_eq!(
        call(&s, None, &s.token, "TenantDelete", json!({"tenantid": 1})).status,
        400
    );
    let (again, _) = create(&s, "beta");
    assert_eq!(again, 4);
    // The deleted tenant's registry entry keeps its id only.
    let kept = s
        .store
        .sql("SELECT meta FROM records WHERE kind = 'tenant' AND id = '3'");
    assert!(!kept.contains("beta") && !kept.contains("admin"), "{kept}");
    let unlock = call(&s, None, &s.token, "BulkListUnlock", json!({})).expect(200);
    let log = call(
        &s,
        None,
        &s.token,
        "BulkListAllAuditEvents",
        json!({"unlockuuid": unlock["unlockuuid"], "limit": 100}),
    )
    .expect(200);
    let titles = log["rows"].to_string();
    for t in ["create tenant 2", "change tenant 2", "delete tenant 3"] {
        assert!(titles.contains(t), "{t} not in {titles}");
    }
    let stats = call(&s, None, &s.token, "SystemGetSystemStats", json!({})).expect(200);
    assert_eq!(stats["stats"]["numtenants"], 3, "{stats}");
}

fn a_tenant_sees_only_its_own_data(b: &Backend) {
    let s = Server::start(b);
    let (_, a) = create(&s, "acme");
    let (_, bt) = create(&s, "beta");
    let acme = |method: &str, body: Value| call(&s, Some("acme"), &a, method, body);
    let beta = |method: &str, body: Value| call(&s, Some("beta"), &bt, method, body);
    let ann = json!({"mode": "email", "identity": "ann@example.com"});
    let with = |extra: Value| {
        let mut v = ann.clone();
        v.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        v
    };
    // The same email in three tenants: three people, three tokens, unrelated
    // index digests (each tenant has its own index key).
    let profile = json!({"profile": {"email": "ann@example.com", "name": "Ann"}});
    let ta = text(&acme("UserCreate", profile.clone()).expect(200), "token");
    let tb = text(&beta("UserCreate", profile.clone()).expect(200), "token");
    let tm = text(
        &call(&s, None, &s.token, "UserCreate", profile).expect(200),
        "token",
    );
    assert!(ta != tb && tb != tm && ta != tm);
    let digests = s
        .store
        .sql("SELECT COUNT(DISTINCT digest) FROM user_index WHERE name = 'email'");
    assert_eq!(digests.trim(), "3");
    // Tokens work only in their own tenant: not in another, not without the
    // header, and the main tenant's root token is not a tenant's.
    assert_eq!(
        call(&s, Some("beta"), &a, "UserGet", ann.clone()).status,
        403
    );
    assert_eq!(call(&s, None, &a, "UserGet", ann.clone()).status, 403);
    assert_eq!(
        call(&s, Some("acme"), &s.token, "UserGet", ann.clone()).status,
        403
    );
    let v1 = s.call_as(
        Some(&a),
        "GET",
        "/v1/user/email/ann@example.com",
        Body::None,
    );
    assert_eq!(v1.status, 403);
    // An unknown tenant is named as such.
    let r = call(&s, Some("nosuch"), &a, "UserGet", ann.clone());
    assert_eq!(r.status, 404);
    assert_eq!(r.json["message"], "The tenant was not found");
    // The tenant also comes from the Host sub-domain when no header names it.
    let host = s.call_with(
        Some(&a),
        "POST",
        "/v2/UserGet",
        &[("Host", "acme.localhost")],
        Body::Json(ann.clone()),
    );
    assert_eq!(text(&host.expect(200), "token"), ta);
    // Users: each tenant finds its own Ann; another tenant's token is unknown.
    assert_eq!(text(&acme("UserGet", ann.clone()).expect(200), "token"), ta);
    assert_eq!(
        acme("UserGet", json!({"mode": "token", "identity": tb})).status,
        404
    );
    assert_eq!(
        acme(
            "UserUpdate",
            json!({"mode": "token", "identity": tb, "profile": {"x": 1}})
        )
        .status,
        404
    );
    assert_eq!(
        acme("UserDelete", json!({"mode": "token", "identity": tb})).status,
        404
    );
    // Every other method family, in both directions.
    one_way(&s, ("acme", &a), ("beta", &bt), 1);
    one_way(&s, ("beta", &bt), ("acme", &a), 2);
    // A person's own token is scoped to their tenant too.
    let x = s
        .call_with(
            Some(&a),
            "POST",
            "/v1/xtoken/email/ann@example.com",
            &[],
            Body::Json(json!({})),
        )
        .status;
    assert_eq!(x, 403, "a tenant admin is not the main tenant's root on v1");
    // On PostgreSQL, row-level security is a second wall: a transaction in acme's
    // scope (as the vault's tenant handles run) sees and writes only acme's rows,
    // whatever its query asks for.
    if let (Backend::Postgres(_), Some(url)) = (b, s.store.url.as_deref()) {
        let as_acme = |q: &str| {
            std::process::Command::new("psql")
                .args([
                    url,
                    "-qAt",
                    "-c",
                    &format!(
                        "BEGIN; SET LOCAL ROLE strongbox_tenant; \
                         SELECT set_config('strongbox.tenant', 't2', true); {q}; COMMIT"
                    ),
                ])
                .output()
                .unwrap()
        };
        let last = |o: std::process::Output| {
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .last()
                .unwrap_or("")
                .to_string()
        };
        assert_eq!(last(as_acme("SELECT COUNT(*) FROM users")), "1");
        assert_eq!(
            last(as_acme("SELECT COUNT(*) FROM records WHERE tenant <> 't2'")),
            "0"
        );
        assert_eq!(
            last(as_acme("SELECT COUNT(*) FROM key_ring WHERE tenant = 't3'")),
            "0"
        );
        let refused = as_acme(
            "WITH u AS (UPDATE users SET version = version + 1 WHERE tenant = 't3' \
             RETURNING 1) SELECT COUNT(*) FROM u",
        );
        assert_eq!(last(refused), "0", "another tenant's rows changed");
        let refused = as_acme(
            "INSERT INTO records (tenant, kind, id, created, updated, version) \
             VALUES ('t3', 'x', 'y', 0, 0, 1)",
        );
        assert!(!refused.status.success());
        assert!(
            String::from_utf8_lossy(&refused.stderr).contains("row-level security"),
            "{}",
            String::from_utf8_lossy(&refused.stderr)
        );
        // The main tenant's handle, the owner, is not confined.
        let all = s.store.sql("SELECT COUNT(*) FROM users");
        assert_eq!(all.trim(), "3");
    }
    // What the main tenant holds is untouched by all this.
    let main = call(&s, None, &s.token, "UserGet", ann.clone()).expect(200);
    assert_eq!(text(&main, "token"), tm);
    assert_eq!(
        call(
            &s,
            None,
            &s.token,
            "AppdataGet",
            with(json!({"appname": "shop1"}))
        )
        .status,
        404
    );
}

fn tenants_survive_restarts_and_root_key_rotation(b: &Backend) {
    let s = Server::start(b);
    let (_, a) = create(&s, "acme");
    call(
        &s,
        Some("acme"),
        &a,
        "UserCreate",
        json!({"profile": {"login": "ann", "name": "Ann"}}),
    )
    .expect(200);
    let get = |s: &Server| {
        call(
            s,
            Some("acme"),
            &a,
            "UserGet",
            json!({"mode": "login", "identity": "ann"}),
        )
    };
    let mut s = s.restart();
    assert_eq!(get(&s).expect(200)["profile"]["name"], "Ann");
    // A new root key re-wraps every tenant's key ring with the main one. Rotated
    // under the running server, which then refuses to make a tenant whose ring
    // would be wrapped with the old key (no server started later could open it).
    let mut args = vec!["rotate".to_string(), "root-key".to_string()];
    args.extend(s.store.args.iter().cloned());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, out) =
        crate::harness::run_bin(&args, &[("STRONGBOX_ROOT_KEY", Some(&s.root_key))], "");
    assert_eq!(code, 0, "{out}");
    let r = call(
        &s,
        None,
        &s.token,
        "TenantCreate",
        json!({"tenantname": "late", "tenantorg": "x"}),
    );
    assert_eq!(r.status, 409, "{}", r.json);
    s.stop();
    let new = out
        .lines()
        .find_map(|l| l.strip_prefix("Root key:"))
        .unwrap()
        .trim()
        .to_string();
    let (token, store) = (
        s.token.clone(),
        std::mem::replace(&mut s.store, StoreLoc::placeholder()),
    );
    let s = Server::serve(store, new, token, vec![]);
    assert_eq!(get(&s).expect(200)["profile"]["name"], "Ann");
    call(
        &s,
        Some("acme"),
        &a,
        "UserCreate",
        json!({"profile": {"login": "bob"}}),
    )
    .expect(200);
}

/// `Tenant id:` and `Admin token:` of `strongbox tenant create`'s answer.
fn created(code: i32, out: &str) -> (i64, String) {
    assert_eq!(code, 0, "{out}");
    let field = |prefix: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("no {prefix} in {out}"))
            .trim()
            .to_string()
    };
    (field("Tenant id:").parse().unwrap(), field("Admin token:"))
}

fn the_cli_creates_tenants(b: &Backend) {
    let mut s = Server::start(b);
    // Through the running vault, with the root token from the environment.
    let (code, out) = crate::harness::run_bin(
        &[
            "tenant", "create", "acme", "--org", "Acme", "--addr", &s.base,
        ],
        &[("STRONGBOX_TOKEN", Some(&s.token))],
        "",
    );
    let (id, a) = created(code, &out);
    assert_eq!(id, 2);
    assert!(out.contains("Tenant: acme"), "{out}");
    call(
        &s,
        Some("acme"),
        &a,
        "UserCreate",
        json!({"profile": {"login": "ann"}}),
    )
    .expect(200);
    // A wrong token or a taken name is refused with the vault's reason, exit 2.
    let (code, out) = crate::harness::run_bin(
        &[
            "tenant", "create", "acme", "--org", "Acme", "--addr", &s.base,
        ],
        &[("STRONGBOX_TOKEN", Some(&s.token))],
        "",
    );
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("Duplicate tenant name"), "{out}");
    let (code, _) = crate::harness::run_bin(
        &["tenant", "create", "other", "--org", "O", "--addr", &s.base],
        &[(
            "STRONGBOX_TOKEN",
            Some("8f1c2d3e-4b5a-4978-8695-a4b3c2d1e0f9"),
        )],
        "",
    );
    assert_eq!(code, 2);
    // On the store directly, with the root key.
    s.stop();
    let mut args = vec!["tenant", "create", "beta", "--org", "Beta"];
    args.extend(s.store.args.iter().map(String::as_str));
    let (code, out) =
        crate::harness::run_bin(&args, &[("STRONGBOX_ROOT_KEY", Some(&s.root_key))], "");
    let (id, bt) = created(code, &out);
    assert_eq!(id, 3);
    let s = s.restart();
    call(
        &s,
        Some("beta"),
        &bt,
        "UserCreate",
        json!({"profile": {"login": "ann"}}),
    )
    .expect(200);
    assert_eq!(
        call(
            &s,
            Some("acme"),
            &a,
            "UserGet",
            json!({"mode": "login", "identity": "ann"})
        )
        .status,
        200
    );
}

/// One direction of the isolation matrix: what `owner` stores (every method family)
/// `viewer` can neither read nor change. `tag` keeps the names of each direction apart.
fn one_way(s: &Server, viewer: (&str, &str), owner: (&str, &str), tag: u8) {
    let (viewer_name, owner_name) = (viewer.0, owner.0);
    let viewer = |method: &str, body: Value| call(s, Some(viewer.0), viewer.1, method, body);
    let owner = |method: &str, body: Value| call(s, Some(owner.0), owner.1, method, body);
    let ann = json!({"mode": "email", "identity": "ann@example.com"});
    let with = |extra: Value| {
        let mut v = ann.clone();
        v.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        v
    };
    let (app, brief, activity) = (
        format!("shop{tag}"),
        format!("news{tag}"),
        format!("mailing{tag}"),
    );
    // App data.
    owner(
        "AppdataCreate",
        with(json!({"appname": app, "appdata": {"plan": "gold"}})),
    )
    .expect(200);
    assert_eq!(
        viewer("AppdataGet", with(json!({"appname": app}))).status,
        404
    );
    let apps = viewer("AppdataListAppNames", json!({})).expect(200)["apps"].clone();
    assert!(!apps.to_string().contains(&app), "{apps}");
    // Consent and processing activities: each tenant its own catalogue.
    owner(
        "LegalBasisCreate",
        json!({"brief": brief, "basistype": "consent"}),
    )
    .expect(200);
    owner("AgreementAccept", with(json!({"brief": brief}))).expect(200);
    let bases = viewer("LegalBasisListAgreements", json!({})).expect(200);
    assert!(!bases["rows"].to_string().contains(&brief), "{bases}");
    assert_eq!(
        viewer("AgreementGet", with(json!({"brief": brief}))).status,
        404
    );
    owner("ProcessingActivityCreate", json!({"activity": activity})).expect(200);
    let activities = viewer("ProcessingActivityListActivities", json!({})).expect(200);
    assert!(
        !activities["rows"].to_string().contains(&activity),
        "{activities}"
    );
    // Sessions and shared records.
    let sid = format!("0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f{tag}");
    owner(
        "SessionUpsert",
        json!({"sessionuuid": sid, "sessiondata": {"email": "ann@example.com"}}),
    )
    .expect(200);
    assert_eq!(
        viewer("SessionGet", json!({"sessionuuid": sid})).status,
        404
    );
    let share = text(
        &owner("SharedRecordCreate", with(json!({"fields": "name"}))).expect(200),
        "recorduuid",
    );
    let get_share = |tenant: Option<&str>| {
        let headers: Vec<(&str, &str)> =
            tenant.map(|t| ("X-Bunker-Tenant", t)).into_iter().collect();
        s.call_with(
            None,
            "POST",
            "/v2/SharedRecordGet",
            &headers,
            Body::Json(json!({"recorduuid": share})),
        )
    };
    assert_eq!(
        get_share(Some(owner_name)).expect(200)["data"]["name"],
        "Ann"
    );
    assert_eq!(get_share(Some(viewer_name)).status, 404);
    assert_eq!(get_share(None).status, 404);
    // Requests.
    let req = text(
        &owner("UserDeleteRequest", ann.clone()).expect(200),
        "requestuuid",
    );
    assert_eq!(
        viewer("UserRequestGet", json!({"requestuuid": req})).status,
        404
    );
    assert_eq!(
        viewer("UserRequestApprove", json!({"requestuuid": req})).status,
        404
    );
    // Audit: another tenant's events are not found.
    let events = owner("AuditListUserEvents", ann.clone()).expect(200);
    let event = events["rows"][0]["auditeventuuid"].clone();
    assert_eq!(
        viewer("AuditGetEvent", json!({"auditeventuuid": event})).status,
        404
    );
    // The bulk gate: an unlock works only in the tenant, and with the token, that
    // asked for it.
    let unlock = viewer("BulkListUnlock", json!({})).expect(200)["unlockuuid"].clone();
    assert_eq!(
        owner("BulkListAllAuditEvents", json!({"unlockuuid": unlock})).status,
        403
    );
    assert_eq!(
        call(
            s,
            None,
            &s.token,
            "BulkListAllAuditEvents",
            json!({"unlockuuid": unlock})
        )
        .status,
        403
    );
    viewer("BulkListAllAuditEvents", json!({"unlockuuid": unlock})).expect(200);
    // Counts and exports are per tenant.
    let stats = viewer("SystemGetSystemStats", json!({})).expect(200);
    assert_eq!(stats["stats"]["numusers"], 1, "{stats}");
    let report = viewer("SystemGetUserReport", ann.clone()).expect(200);
    assert!(report["report"]["apps"].get(&app).is_none(), "{report}");
    assert!(
        !report["report"]["agreements"].to_string().contains(&brief),
        "{report}"
    );
}

/// Webhooks go to the main tenant's receiver, which cannot tell tenants apart: a
/// tenant's changes queue none.
fn webhooks_stay_the_main_tenants(b: &Backend) {
    // A receiver nobody listens on: what is queued stays in the outbox.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/hook");
    let s = Server::start_with(b, &["--notification-url", &url]);
    let (_, a) = create(&s, "acme");
    call(
        &s,
        Some("acme"),
        &a,
        "UserCreate",
        json!({"profile": {"login": "ann"}}),
    )
    .expect(200);
    let queued = |tenant: &str| {
        s.store
            .sql(&format!(
                "SELECT COUNT(*) FROM records WHERE kind = 'outbox' AND tenant = '{tenant}'"
            ))
            .trim()
            .to_string()
    };
    assert_eq!(queued("t2"), "0");
    s.create_user(json!({"login": "ann"}));
    assert_eq!(queued("default"), "1");
}
