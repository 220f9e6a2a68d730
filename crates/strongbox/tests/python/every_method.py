"""Every v2 method Strongbox serves, called through Databunker Pro's official Python
client (`databunkerpro`, unchanged), with the error cases the reference names.

Driven by crates/strongbox/tests/it/pro_clients.rs against a live server:
STRONGBOX_URL and STRONGBOX_TOKEN (the main tenant's root token); the client's
package is on PYTHONPATH. Prints `all checks passed` at the end; any failed check
raises and exits non-zero.
"""

import os
import sys
import time
import uuid

from databunkerpro import DatabunkerproAPI

URL = os.environ["STRONGBOX_URL"]
ROOT = os.environ["STRONGBOX_TOKEN"]
CHECKS = 0


def ok(reply, what):
    global CHECKS
    CHECKS += 1
    assert isinstance(reply, dict) and reply.get("status") == "ok", f"{what}: {reply}"
    return reply


def error(reply, what, message=None):
    global CHECKS
    CHECKS += 1
    assert isinstance(reply, dict) and reply.get("status") == "error", f"{what}: {reply}"
    if message is not None:
        assert reply.get("message") == message, f"{what}: {reply}"
    return reply


def tenants(main):
    """Tenants, made by the main tenant's root; returns two tenant clients."""
    acme = ok(main.create_tenant({"tenantname": "pyacme", "tenantorg": "Acme"}), "TenantCreate")
    beta = ok(main.create_tenant({"tenantname": "pybeta", "tenantorg": "Beta"}), "TenantCreate")
    error(main.create_tenant({"tenantname": "pyacme", "tenantorg": "x"}), "TenantCreate taken",
          "Duplicate tenant name")
    a = DatabunkerproAPI(URL, acme["xtoken"], "pyacme")
    b = DatabunkerproAPI(URL, beta["xtoken"], "pybeta")
    got = ok(a.get_tenant(str(acme["tenantid"])), "TenantGet by numeric text")
    assert got["tenantname"] == "pyacme" and got["tenantorg"] == "Acme", got
    error(a.get_tenant(beta["tenantid"]), "TenantGet of another tenant")
    ok(a.update_tenant(acme["tenantid"], {"tenantorg": "Acme Corp"}), "TenantUpdate")
    assert ok(a.get_tenant(acme["tenantid"]), "TenantGet")["tenantorg"] == "Acme Corp"
    listed = ok(main.list_tenants(0, 100), "TenantListTenants")
    names = [r["tenantname"] for r in listed["rows"]]
    assert "pyacme" in names and "pybeta" in names, listed
    error(a.list_tenants(), "TenantListTenants by a tenant")
    gone = ok(main.create_tenant({"tenantname": "pygone", "tenantorg": "x"}), "TenantCreate")
    ok(main.delete_tenant(gone["tenantid"]), "TenantDelete")
    error(main.get_tenant(gone["tenantid"]), "TenantGet of a deleted tenant")
    return a, b


def users(api, other):
    email = "ann@example.com"
    created = ok(api.create_user({"email": email, "name": "Ann", "phone": 447911123456}), "UserCreate")
    token = created["token"]
    error(api.create_user({"email": email}), "UserCreate duplicate")
    error(api.get_user("nickname", "x"), "UserGet bad mode", "The mode parameter has an incorrect format")
    error(api.get_user("email", "nobody@example.com"), "UserGet unknown")
    got = ok(api.get_user("email", email), "UserGet")
    assert got["token"] == token and got["profile"]["name"] == "Ann", got
    # The other tenant has no such person.
    error(other.get_user("token", token), "UserGet across tenants")
    ok(api.update_user("email", email, {"name": "Anna", "phone": "+447700900123"}), "UserUpdate")
    got = ok(api.get_user("email", email), "UserGet after UserUpdate")
    assert got["profile"]["name"] == "Anna" and got["profile"]["phone"] == "+447700900123", got
    ok(api.patch_user("token", token, [{"op": "add", "path": "/city", "value": "Leeds"}]), "UserPatch")
    assert ok(api.get_user("token", token), "UserGet")["profile"]["city"] == "Leeds"
    bulk = ok(api.create_users_bulk(
        [{"profile": {"email": f"bulk{i}@example.com", "name": f"B{i}"}} for i in range(3)]
        + [{"profile": {"email": email}}],
        {"finaltime": "1y"}), "UserCreateBulk")
    assert len(bulk["created"]) == 3 and len(bulk["errors"]) == 1, bulk
    error(api.create_users_bulk([]), "UserCreateBulk empty")
    deleted = ok(api.delete_users_bulk([{"mode": "email", "identity": "bulk0@example.com"},
                                        {"mode": "email", "identity": "bulk1@example.com"}]),
                 "UserDeleteBulk")
    assert deleted["deleted_count"] == 2, deleted
    ok(api.delete_user("email", "bulk2@example.com"), "UserDelete")
    error(api.get_user("email", "bulk2@example.com"), "UserGet after UserDelete")
    return token


def requests_for_the_dpo(api, token):
    upd = ok(api.request_user_update("token", token, {"name": "Annie"}), "UserUpdateRequest")
    rid = upd["requestuuid"]
    patch = ok(api.request_user_patch("token", token, [{"op": "replace", "path": "/city", "value": "York"}]),
               "UserPatchRequest")
    forget = ok(api.request_user_deletion("token", token), "UserDeleteRequest")
    got = ok(api.get_user_request(rid), "UserRequestGet")
    assert got["request"]["change"] == {"name": "Annie"}, got
    listed = ok(api.list_user_requests("token", token, 0, 10), "UserRequestListUserRequests")
    assert listed["total"] == 3, listed
    ok(api.approve_user_request(rid, {"reason": "ok"}), "UserRequestApprove")
    error(api.approve_user_request(rid), "UserRequestApprove twice", "This user request is closed")
    assert ok(api.get_user("token", token), "UserGet")["profile"]["name"] == "Annie"
    ok(api.cancel_user_request(patch["requestuuid"], {"reason": "no"}), "UserRequestCancel")
    ok(api.cancel_user_request(forget["requestuuid"]), "UserRequestCancel")
    error(api.get_user_request(str(uuid.uuid4())), "UserRequestGet unknown")
    unlock = ok(api.bulk_list_unlock(), "BulkListUnlock")["unlockuuid"]
    every = ok(api.bulk_list_all_user_requests(unlock, 0, 100), "BulkListAllUserRequests")
    assert every["total"] == 3, every


def app_data(api, token):
    ok(api.create_app_data("token", token, "shop", {"plan": "free", "n": 1}), "AppdataCreate")
    assert ok(api.get_app_data("token", token, "shop"), "AppdataGet")["appdata"] == {"plan": "free", "n": 1}
    ok(api.update_app_data("token", token, "shop", {"plan": "gold"}), "AppdataUpdate")
    assert ok(api.get_app_data("token", token, "shop"), "AppdataGet")["appdata"]["plan"] == "gold"
    req = ok(api.request_app_data_update("token", token, "shop", {"plan": "platinum"}), "AppdataUpdateRequest")
    assert req["requestuuid"], req
    assert ok(api.list_app_data_names("token", token), "AppdataListUserAppNames")["apps"] == ["shop"]
    assert "shop" in ok(api.list_app_names(), "AppdataListAppNames")["apps"]
    error(api.get_app_data("token", token, "Bad Name"), "AppdataGet bad app name")
    ok(api.delete_app_data("token", token, "shop"), "AppdataDelete")
    error(api.get_app_data("token", token, "shop"), "AppdataGet after AppdataDelete")


def consent(api, token):
    ok(api.create_legal_basis({"brief": "news", "basistype": "consent", "shortdesc": "News",
                               "usercontrol": True}), "LegalBasisCreate")
    ok(api.update_legal_basis("news", {"fulldesc": "Our newsletter"}), "LegalBasisUpdate")
    briefs = [r["brief"] for r in ok(api.list_agreements(), "LegalBasisListAgreements")["rows"]]
    assert "news" in briefs, briefs
    ok(api.accept_agreement("token", token, "news", {"agreementmethod": "web"}), "AgreementAccept")
    assert ok(api.get_user_agreement("token", token, "news"), "AgreementGet")["agreement"]["status"] == "yes"
    rows = ok(api.list_user_agreements("token", token), "AgreementListUserAgreements")["rows"]
    assert [r["brief"] for r in rows] == ["news"], rows
    ok(api.request_agreement_cancellation("token", token, "news"), "AgreementCancelRequest")
    ok(api.cancel_agreement("token", token, "news"), "AgreementCancel")
    assert ok(api.get_user_agreement("token", token, "news"), "AgreementGet")["agreement"]["status"] == "no"
    ok(api.revoke_all_agreements("news"), "AgreementRevokeAll")
    error(api.get_user_agreement("token", token, "nosuch"), "AgreementGet unknown basis")
    ok(api.create_processing_activity({"activity": "mailing", "title": "Mailing"}), "ProcessingActivityCreate")
    ok(api.update_processing_activity("mailing", {"title": "Mail"}), "ProcessingActivityUpdate")
    ok(api.link_processing_activity_to_legal_basis("mailing", "news"), "ProcessingActivityLinkLegalBasis")
    rows = ok(api.list_processing_activities(), "ProcessingActivityListActivities")["rows"]
    assert rows[0]["title"] == "Mail" and rows[0]["briefs"][0]["brief"] == "news", rows
    ok(api.unlink_processing_activity_from_legal_basis("mailing", "news"), "ProcessingActivityUnlinkLegalBasis")
    ok(api.delete_processing_activity("mailing"), "ProcessingActivityDelete")
    ok(api.delete_legal_basis("news"), "LegalBasisDelete")


def sessions_and_shares(api, anonymous, token):
    sid = str(uuid.uuid4())
    ok(api.upsert_session(sid, {"token": token, "device": "phone"}, {"finaltime": "1d"}), "SessionUpsert")
    assert ok(api.get_session(sid), "SessionGet")["sessiondata"]["device"] == "phone"
    rows = ok(api.list_user_sessions("token", token), "SessionListUserSessions")["rows"]
    assert [r["sessionuuid"] for r in rows] == [sid], rows
    ok(api.delete_session(sid), "SessionDelete")
    error(api.get_session(sid), "SessionGet after SessionDelete")
    share = ok(api.create_shared_record("token", token, {"fields": "name", "partner": "p", "finaltime": "1d"}),
               "SharedRecordCreate")["recorduuid"]
    data = ok(anonymous.get_shared_record(share), "SharedRecordGet without a token")["data"]
    assert data == {"name": "Annie"}, data
    error(anonymous.get_shared_record(str(uuid.uuid4())), "SharedRecordGet unknown")


def audit_and_bulk(api, token):
    events = ok(api.list_user_audit_events("token", token, 0, 5), "AuditListUserEvents",
                )
    assert len(events["rows"]) == 5 and events["total"] > 5, events
    first = events["rows"][0]
    got = ok(api.get_audit_event(first["auditeventuuid"]), "AuditGetEvent")
    assert got["eventtype"] == first["eventtype"], got
    error(api.get_audit_event("not-a-uuid"), "AuditGetEvent bad id")
    error(api.bulk_list_all_users(str(uuid.uuid4())), "BulkListAllUsers without a valid unlock",
          "The unlockuuid value was not found or is not valid")
    unlock = ok(api.bulk_list_unlock(), "BulkListUnlock")["unlockuuid"]
    everyone = ok(api.bulk_list_all_users(unlock, 0, 100), "BulkListAllUsers")
    assert token in [r["token"] for r in everyone["rows"]], everyone
    some = ok(api.bulk_list_users(unlock, [{"mode": "token", "identity": token}]), "BulkListUsers")
    assert some["total"] == 1, some
    error(api.bulk_list_users(unlock, []), "BulkListUsers empty")
    log = ok(api.bulk_list_all_audit_events(unlock, 0, 10), "BulkListAllAuditEvents")
    assert len(log["rows"]) == 10, log


def luhn(number):
    total = 0
    for i, c in enumerate(reversed(number)):
        d = int(c) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


def tokenization(api, other):
    """The Java suite's PCI scenarios (DatabunkerproApiPciTest), then Strongbox's
    extras: kept digits and address tokens."""
    card = "4532015112830366"
    made = ok(api.create_token("creditcard", card,
                               {"unique": True, "slidingtime": "1d", "finaltime": "12m"}),
              "TokenCreate")
    base, tid = made["tokenbase"], made["tokenuuid"]
    assert len(base) == len(card) and base != card and luhn(base), made
    for key in (tid, base):
        assert ok(api.get_token(key), "TokenGet")["record"] == card
    error(other.get_token(tid), "TokenGet from another tenant", "Token not found")
    ok(api.delete_token(tid), "TokenDelete")
    for key in (tid, base):
        error(api.get_token(key), "TokenGet after TokenDelete", "Token not found")
    cards = ["4111111111111111", "5500005555555559", "4716182333661234"]
    bulk = ok(api.create_tokens_bulk([{"tokentype": "creditcard", "record": c} for c in cards]),
              "TokenCreateBulk")
    assert bulk["num"] == 3, bulk
    assert bulk["summary"] == {"created": 3, "duplicates": 0, "errors": 0, "total": 3}, bulk
    bases = [t["tokenbase"] for t in bulk["created"]]
    unlock = ok(api.bulk_list_unlock(), "BulkListUnlock")["unlockuuid"]
    listed = ok(api.bulk_list_tokens(unlock, bases), "BulkListTokens")
    assert listed["total"] == 3, listed
    for row in listed["rows"]:
        assert row["tokentype"] == "creditcard" and row["record"] in cards, row
        assert row["tokenuuid"] and row["tokenbase"] in bases, row
    error(api.bulk_list_tokens(str(uuid.uuid4()), bases), "BulkListTokens without a valid unlock",
          "The unlockuuid value was not found or is not valid")
    assert ok(api.bulk_delete_tokens(unlock, bases), "BulkDeleteTokens")["deleted"] == 3
    after = ok(api.bulk_list_tokens(unlock, bases), "BulkListTokens after BulkDeleteTokens")
    assert after["rows"] == [], after
    error(api.get_token("invalid-token"), "TokenGet invalid-token", "Token not found")
    error(api.create_tokens_bulk([]), "TokenCreateBulk empty")
    error(api.create_token("phone", "1"), "TokenCreate unknown type")
    kept = ok(api.create_token("creditcard", "4532 0151 1283 0366", {"keepfirst": 6, "keeplast": 4}),
              "TokenCreate keeping digits")["tokenbase"]
    assert kept.startswith("4532 01") and kept.endswith(" 0366"), kept
    address = ok(api.create_token("email", "ann@example.com"), "TokenCreate email")["tokenbase"]
    assert address.endswith("@token.invalid"), address
    assert ok(api.get_token(address), "TokenGet email")["record"] == "ann@example.com"


def files(api, other, token):
    """The Java suite's file flow (DatabunkerproApiTest), then duplicates, the raw
    form, the tenant wall and the bulk listing by tag."""
    import base64
    content = b"%PDF-1.4 passport scan \x00\x01\x02"
    data = base64.b64encode(content).decode()
    made = ok(api.create_file("token", token, "passport.pdf", data,
                              {"mimetype": "application/pdf", "tags": ["kyc", "notes"], "finaltime": "1d"}),
              "FileCreate")
    fid = made["fileuuid"]
    assert made["tags"] == ["kyc", "notes"] and made["duplicate"] is False, made
    got = ok(api.get_file("token", token, fileuuid=fid), "FileGet by uuid")
    assert got["filename"] == "passport.pdf" and got["mimetype"] == "application/pdf", got
    assert base64.b64decode(got["filedata"]) == content and got["size"] == len(content), got
    assert ok(api.get_file("token", token, filename="passport.pdf"), "FileGet by name")["fileuuid"] == fid
    assert len(ok(api.list_user_files("token", token), "FileListUserFiles")["files"]) == 1
    assert len(ok(api.list_user_files("token", token, tag="kyc"), "FileListUserFiles kyc")["files"]) == 1
    assert ok(api.list_user_files("token", token, tag="invoice"), "FileListUserFiles invoice")["files"] == []
    tags = ok(api.replace_file_tags("token", token, fid, ["kyc", "verified"]), "FileReplaceTags")["tags"]
    assert len(tags) == 2 and "verified" in tags and "notes" not in tags, tags
    again = ok(api.create_file("token", token, "copy.pdf", data), "FileCreate again")
    assert again["duplicate"] is True and again["fileuuid"] == fid, again
    unlock = ok(api.bulk_list_unlock(), "BulkListUnlock")["unlockuuid"]
    rows = ok(api.bulk_list_files_by_tag(unlock, "verified"), "BulkListFilesByTag")["rows"]
    assert [(r["token"], r["fileuuid"]) for r in rows] == [(token, fid)], rows
    error(other.get_file("token", token, fileuuid=fid), "FileGet from another tenant")
    error(api.create_file("token", token, "x.txt", "not base64!"), "FileCreate bad base64")
    error(api.create_file("token", token, "x.txt", data, {"tags": ["Bad Tag"]}), "FileCreate bad tag")
    ok(api.delete_file("token", token, fid), "FileDelete")
    assert ok(api.list_user_files("token", token), "FileListUserFiles after FileDelete")["files"] == []
    error(api.get_file("token", token, fileuuid=fid), "FileGet after FileDelete")


def access_control(api, main, token):
    """Roles and policies (the main tenant's), groups (the tenant's), and the
    access tokens of people and roles."""
    role = ok(main.create_role({"rolename": "pysupport", "roledesc": "support desk"}), "RoleCreate")["roleid"]
    error(main.create_role({"rolename": "pysupport"}), "RoleCreate taken", "The role record already exists")
    error(api.create_role({"rolename": "mine"}), "RoleCreate in a tenant")
    ok(main.update_role(role, {"roledesc": "support"}), "RoleUpdate")
    names = {"Effect": "Allow", "Action": ["UserGet", "BulkListGroupUsers"], "Resource": "users.profile.name"}
    policy = ok(main.create_policy({"policyname": "py-names", "policydesc": "names", "policy": names}),
                "PolicyCreate")["policyid"]
    error(main.create_policy({"policyname": "py-bad", "policy": {"Effect": "Perhaps", "Action": "*"}}),
          "PolicyCreate invalid")
    error(api.create_policy({"policyname": "mine", "policy": names}), "PolicyCreate in a tenant")
    ok(main.update_policy(policy, {"policydesc": "names only"}), "PolicyUpdate")
    got = ok(main.get_policy("py-names"), "PolicyGet")
    assert got["policy"] == names and got["policydesc"] == "names only", got
    assert "py-names" in [r["policyname"] for r in ok(main.list_policies(), "PolicyListAllPolicies")["rows"]]
    ok(main.link_policy("pysupport", policy), "RoleLinkPolicy")
    group = ok(api.create_group({"groupname": "pyteam", "groupdesc": "team"}), "GroupCreate")["groupid"]
    error(api.create_group({"groupname": "pyteam"}), "GroupCreate taken")
    assert ok(api.get_group(group), "GroupGet")["groupname"] == "pyteam"
    assert ok(api.get_group("pyteam"), "GroupGet by name")["groupid"] == group
    ok(api.update_group(group, {"groupdesc": "the team"}), "GroupUpdate")
    assert [g["groupdesc"] for g in ok(api.list_all_groups(), "GroupListAllGroups")["rows"]] == ["the team"]
    ok(api.add_user_to_group("token", token, "pyteam", "pysupport"), "GroupAddUser")
    mine = ok(api.list_user_groups("token", token), "GroupListUserGroups")["rows"]
    assert mine[0]["groupname"] == "pyteam" and mine[0]["rolename"] == "pysupport", mine
    unlock = ok(api.bulk_list_unlock(), "BulkListUnlock")["unlockuuid"]
    members = ok(api.bulk_list_group_users(unlock, "pyteam"), "BulkListGroupUsers")["rows"]
    assert [m["token"] for m in members] == [token], members
    # A role's token sees what the role's policies allow, in this tenant too.
    xtoken = ok(api.create_role_x_token("pysupport", {"finaltime": "1h"}), "XTokenCreateForRole")["xtoken"]
    as_role = DatabunkerproAPI(URL, xtoken, "pyacme")
    seen = ok(as_role.get_user("token", token), "UserGet by a role")["profile"]
    assert seen["name"] == "Annie" and seen["email"] == "***", seen
    error(as_role.delete_user("token", token), "UserDelete by a role", "Access denied")
    error(as_role.create_role({"rolename": "x"}), "RoleCreate by a role", "Access denied")
    own = ok(api.create_user_x_token("token", token, {"finaltime": "1h"}), "XTokenCreateForUser")
    assert own["token"] == token, own
    me = DatabunkerproAPI(URL, own["xtoken"], "pyacme")
    assert ok(me.get_user("token", token), "UserGet with the person's token")["profile"]["email"] != "***"
    ok(api.remove_user_from_group("token", token, group), "GroupDeleteUser")
    assert ok(api.list_user_groups("token", token), "GroupListUserGroups")["rows"] == []
    ok(api.delete_group("pyteam"), "GroupDelete")
    error(api.get_group(group), "GroupGet after GroupDelete")


def system(api, main, token):
    stats = ok(api.get_system_stats(), "SystemGetSystemStats")["stats"]
    assert stats["numusers"] >= 1 and stats["numtenants"] == 1, stats
    assert ok(main.get_system_stats(), "SystemGetSystemStats")["stats"]["numtenants"] == 3
    report = ok(api.get_user_report("token", token), "SystemGetUserReport")["report"]
    assert report["token"] == token and report["profile"]["name"] == "Annie", report
    html = ok(api.get_user_html_report("token", token), "SystemGetUserHTMLReport")["html"]
    assert "Annie" in html and "<script" not in html, html[:200]
    metrics = api.get_system_metrics()
    assert any(k.startswith("http_requests_total") for k in metrics), list(metrics)[:5]


def versions_and_soft_delete(api, main, token):
    """UserListVersions (versioning is off here: the current version only), and a
    soft delete across tenants undone by a restore."""
    versions = ok(api.list_user_versions("token", token), "UserListVersions")["versions"]
    assert len(versions) == 1 and versions[0]["current"] is True and len(versions[0]["md5"]) == 32, versions
    soft = ok(api.create_user({"email": "soft@example.com", "name": "Soft"}), "UserCreate")["token"]
    unlock = ok(main.bulk_list_unlock(), "BulkListUnlock")["unlockuuid"]
    found = ok(main.get_user_profiles("email", "soft@example.com", unlock), "SystemGetUserProfiles")
    assert found["total"] == 1 and found["rows"][0]["profile"]["name"] == "Soft", found
    error(api.delete_user_profiles("email", "soft@example.com", unlock), "SystemDeleteUserProfiles by a tenant")
    gone = ok(main.delete_user_profiles("email", "soft@example.com", unlock), "SystemDeleteUserProfiles")
    assert gone["total"] == 1 and gone["rows"][0]["token"] == soft, gone
    assert gone["rows"][0]["tenantname"] == "pyacme", gone
    error(api.get_user("email", "soft@example.com"), "UserGet of a soft-deleted profile")
    back = ok(main.restore_user_profile(soft, unlock, "pyacme"), "SystemRestoreUserProfile")
    assert back["result"] == "restored" and back["profile"]["name"] == "Soft", back
    assert ok(api.get_user("email", "soft@example.com"), "UserGet after restore")["token"] == soft
    error(main.restore_user_profile(soft, unlock, "pyacme"), "SystemRestoreUserProfile twice")


def search(api, main):
    """UserSearch (fuzzy, in one tenant) and SystemSearchUserProfiles (every tenant):
    a typo still finds the person. The index may still be building at first (503)."""
    unlock = ok(api.bulk_list_unlock(), "BulkListUnlock")["unlockuuid"]
    for _ in range(100):
        found = api.search_user("sof@example.com", unlock)
        if found.get("status") == "ok":
            break
        time.sleep(0.1)
    ok(found, "UserSearch")
    assert found["rows"][0]["profile"]["name"] == "Soft", found
    error(api.search_user("so", unlock), "UserSearch with 2 characters")
    main_unlock = ok(main.bulk_list_unlock(), "BulkListUnlock")["unlockuuid"]
    across = ok(main.search_user_profiles("sof@example.com", main_unlock), "SystemSearchUserProfiles")
    assert any(r["tenantname"] == "pyacme" and r["profile"]["name"] == "Soft" for r in across["rows"]), across
    error(api.search_user_profiles("sof@example.com", unlock), "SystemSearchUserProfiles by a tenant")


def main():
    main_api = DatabunkerproAPI(URL, ROOT, "")
    a, b = tenants(main_api)
    token = users(a, b)
    requests_for_the_dpo(a, token)
    app_data(a, token)
    consent(a, token)
    sessions_and_shares(a, DatabunkerproAPI(URL, "", "pyacme"), token)
    audit_and_bulk(a, token)
    tokenization(a, b)
    files(a, b, token)
    access_control(a, main_api, token)
    system(a, main_api, token)
    versions_and_soft_delete(a, main_api, token)
    search(a, main_api)
    # A wrong token is refused with JSON the client returns as is.
    error(DatabunkerproAPI(URL, str(uuid.uuid4()), "pyacme").get_user("token", token), "a wrong token")
    print(f"{CHECKS} checks; all checks passed")


if __name__ == "__main__":
    try:
        main()
    except AssertionError as e:
        print(f"FAILED: {e}", file=sys.stderr)
        sys.exit(1)
