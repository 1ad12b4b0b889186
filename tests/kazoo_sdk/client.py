"""Drives metaflow-proxy's /v2 API with Kazoo's own Python client library, kazoo-sdk (PyPI).

Usage: client.py BASE_URL API_KEY   (BASE_URL ends in /v2; API_KEY is the default account's)

Logs in with the account's API key (api_auth), creates a user (with a password) and a device,
sets account, user and device metaflows through their documents and through the metaflows
routes, logs in again as the user (user_auth), reads everything back and checks it. Exits
non-zero with a message on the first mismatch; prints "kazoo-sdk: ok" at the end.
"""

import sys

import kazoo
from kazoo.exceptions import KazooApiBadDataError
from kazoo.request_objects import KazooRequest

ACCOUNT = "default"


def check(condition, what):
    if not condition:
        sys.exit("kazoo-sdk check failed: " + what)


def metaflows_request(client, path, method="get", data=None):
    # kazoo-sdk 0.2.4 has no metaflows resource: its generic KazooRequest, run through the
    # client so that the token is sent, reaches the route.
    request = KazooRequest(path, method=method)
    if data is None:
        return client._execute_request(request)
    return client._execute_request(request, data=data)


def main():
    base_url, api_key = sys.argv[1], sys.argv[2]

    operator = kazoo.Client(api_key=api_key, base_url=base_url)
    token = operator.authenticate()
    check(len(token) == 64, "api_auth token " + repr(token))
    check(operator.auth_data["data"]["account_id"] == ACCOUNT, repr(operator.auth_data))

    user = operator.create_user(ACCOUNT, {
        "first_name": "Sdk", "last_name": "User",
        "username": "sdkuser", "password": "s3cret",
        "metaflows": {"numbers": {"5": {"module": "hangup"}}},
    })["data"]
    check("password" not in user, "password returned: " + repr(user))
    user_id = user["id"]
    check(user["metaflows"]["numbers"]["5"]["module"] == "hangup", repr(user))

    device = operator.create_device(ACCOUNT, {
        "name": "desk", "owner_id": user_id, "sip": {"username": "desk1"},
        "metaflows": {"digit_timeout": "1500"},
    })["data"]
    device_id = device["id"]
    check(device["metaflows"]["digit_timeout"] == 1500, "lenient integer: " + repr(device))

    account = operator.get_account(ACCOUNT)["data"]
    check(len(account.get("api_key", "")) == 64, "api_key shown: " + repr(account))
    account["metaflows"] = {"binding_digit": "#",
                            "numbers": {"9": {"module": "record_call"}}}
    updated = operator.update_account(ACCOUNT, account)["data"]
    check(updated["metaflows"]["numbers"]["9"]["data"]["action"] == "toggle",
          "schema defaults: " + repr(updated))

    try:
        operator.update_user(ACCOUNT, user_id, {
            "first_name": "Sdk", "last_name": "User",
            "metaflows": {"numbers": {"1": {"module": "park"}}}})
        check(False, "a made-up module was accepted")
    except KazooApiBadDataError as error:
        rule = error.field_errors["metaflows.numbers.1.module"]["error"]
        check(rule["message"] == "unable to find metaflow schema for module park", repr(rule))

    device_path = "/accounts/{0}/devices/{1}/metaflows".format(ACCOUNT, device_id)
    metaflows_request(operator, device_path, "post",
                      {"numbers": {"7": {"module": "transfer", "data": {"target": "100"}}}})

    as_user = kazoo.Client(username="sdkuser", password="s3cret",
                           account_name="Default", base_url=base_url)
    as_user.authenticate()
    check(as_user.auth_data["data"]["owner_id"] == user_id, repr(as_user.auth_data))

    user_doc = as_user.get_user(ACCOUNT, user_id)["data"]
    check(user_doc["metaflows"]["numbers"]["5"]["module"] == "hangup", repr(user_doc))
    served = metaflows_request(as_user, "/accounts/{0}/users/{1}/metaflows".format(ACCOUNT, user_id))
    check(served["data"] == user_doc["metaflows"], repr(served))

    device_doc = as_user.get_device(ACCOUNT, device_id)["data"]
    node = device_doc["metaflows"]["numbers"]["7"]
    check(node["data"]["transfer_type"] == "blind", repr(device_doc))
    check("digit_timeout" not in device_doc["metaflows"], "POST replaced: " + repr(device_doc))

    account_flows = metaflows_request(as_user, "/accounts/{0}/metaflows".format(ACCOUNT))["data"]
    check(account_flows["binding_digit"] == "#", repr(account_flows))
    check(as_user.get_account(ACCOUNT)["data"]["metaflows"] == account_flows, "account view")

    print("kazoo-sdk: ok")


if __name__ == "__main__":
    main()
