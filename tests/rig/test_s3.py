"""Smoke tests for the S3 peer (SeaweedFS): objects, listing, multipart, and SigV4 really checked."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest
from botocore.exceptions import ClientError

from margay.rig.s3 import S3Server

pytestmark = pytest.mark.rig


def test_put_list_get(s3: S3Server, s3_bucket: str) -> None:
    client = s3.client()
    client.put_object(Bucket=s3_bucket, Key="flows/2024/05/01/a.ndjson", Body=b'{"a":1}\n')
    client.put_object(Bucket=s3_bucket, Key="flows/2024/05/02/b.ndjson", Body=b'{"b":2}\n')
    listed = client.list_objects_v2(Bucket=s3_bucket, Prefix="flows/")
    assert [o["Key"] for o in listed["Contents"]] == ["flows/2024/05/01/a.ndjson", "flows/2024/05/02/b.ndjson"]
    assert client.get_object(Bucket=s3_bucket, Key="flows/2024/05/02/b.ndjson")["Body"].read() == b'{"b":2}\n'
    assert s3_bucket in [b["Name"] for b in client.list_buckets()["Buckets"]]


def test_fresh_buckets_are_empty_and_distinct(s3: S3Server, s3_bucket: str) -> None:
    other = s3.new_bucket()
    assert other != s3_bucket
    assert s3.client().list_objects_v2(Bucket=other)["KeyCount"] == 0


def test_multipart_upload(s3: S3Server, s3_bucket: str) -> None:
    client = s3.client()
    parts_data = [b"a" * (5 * 1024 * 1024), b"b" * (5 * 1024 * 1024), b"tail"]
    upload = client.create_multipart_upload(Bucket=s3_bucket, Key="big.bin")
    parts = []
    for number, data in enumerate(parts_data, start=1):
        resp = client.upload_part(Bucket=s3_bucket, Key="big.bin", UploadId=upload["UploadId"],
                                  PartNumber=number, Body=data)
        parts.append({"PartNumber": number, "ETag": resp["ETag"]})
    client.complete_multipart_upload(Bucket=s3_bucket, Key="big.bin", UploadId=upload["UploadId"],
                                     MultipartUpload={"Parts": parts})
    body = client.get_object(Bucket=s3_bucket, Key="big.bin")["Body"].read()
    assert body == b"".join(parts_data)
    assert client.head_object(Bucket=s3_bucket, Key="big.bin")["ContentLength"] == len(body)


def test_wrong_secret_is_refused(s3: S3Server, s3_bucket: str) -> None:
    s3.client().put_object(Bucket=s3_bucket, Key="secret.txt", Body=b"x")
    bad = s3.client(aws_secret_access_key=s3.secret_key + "wrong")
    with pytest.raises(ClientError) as read:
        bad.get_object(Bucket=s3_bucket, Key="secret.txt")
    assert read.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    with pytest.raises(ClientError) as write:
        bad.put_object(Bucket=s3_bucket, Key="intruder.txt", Body=b"x")
    assert write.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
    assert "Contents" in s3.client().list_objects_v2(Bucket=s3_bucket, Prefix="secret")
    assert "Contents" not in s3.client().list_objects_v2(Bucket=s3_bucket, Prefix="intruder")


def test_unknown_key_and_anonymous_are_refused(s3: S3Server, s3_bucket: str) -> None:
    with pytest.raises(ClientError) as unknown:
        s3.client(aws_access_key_id="AKIDONOTEXIST").list_objects_v2(Bucket=s3_bucket)
    assert unknown.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    with pytest.raises(urllib.error.HTTPError) as anonymous:
        urllib.request.urlopen(f"{s3.endpoint}/{s3_bucket}/", timeout=5)  # noqa: S310 - loopback
    assert anonymous.value.code == 403
    anonymous.value.close()
