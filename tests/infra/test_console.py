"""The console: a private bucket behind CloudFront (OAC), deployed only when web/ has files."""

from __future__ import annotations

from pathlib import Path

from tests.infra.synth import Synth, require_node

require_node()

from aws_cdk.assertions import Match  # noqa: E402

from infra.console import has_content  # noqa: E402
from tests.infra.template_tools import logical_id_of, render  # noqa: E402


def test_site_bucket_is_reachable_only_through_cloudfront(dev: Synth) -> None:
    site = logical_id_of(dev, "ConsoleSite", "AWS::S3::Bucket")
    (distribution_id,) = dev.resources("AWS::CloudFront::Distribution")
    (oac_id,) = dev.resources("AWS::CloudFront::OriginAccessControl")
    (distribution,) = dev.resources("AWS::CloudFront::Distribution").values()
    config = distribution["Properties"]["DistributionConfig"]
    (origin,) = config["Origins"]
    assert origin["DomainName"] == {"Fn::GetAtt": [site, "RegionalDomainName"]}
    assert origin["OriginAccessControlId"] == {"Fn::GetAtt": [oac_id, "Id"]}
    assert config["DefaultCacheBehavior"]["ViewerProtocolPolicy"] == "redirect-to-https"
    assert config["DefaultRootObject"] == "index.html"
    assert config["Logging"]["Bucket"] == {
        "Fn::GetAtt": [logical_id_of(dev, "DataLogs", "AWS::S3::Bucket"), "RegionalDomainName"]
    }
    # The bucket policy lets this distribution read, nobody else.
    (policy,) = [
        p for p in dev.resources("AWS::S3::BucketPolicy").values() if p["Properties"]["Bucket"] == {"Ref": site}
    ]
    reads = [s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Allow"]
    (read,) = reads
    assert read["Principal"] == {"Service": "cloudfront.amazonaws.com"}
    assert read["Action"] == "s3:GetObject"
    assert f"<{distribution_id}>" in render(read["Condition"]["StringEquals"]["AWS:SourceArn"])


def test_nothing_is_deployed_while_web_has_no_files(dev: Synth) -> None:
    dev.template.resource_count_is("Custom::CDKBucketDeployment", 0)


def test_web_files_and_the_api_url_are_deployed_and_the_cdn_invalidated(prod: Synth) -> None:
    (distribution_id,) = prod.resources("AWS::CloudFront::Distribution")
    prod.template.has_resource_properties(
        "Custom::CDKBucketDeployment",
        {
            "DestinationBucketName": {"Ref": logical_id_of(prod, "ConsoleSite", "AWS::S3::Bucket")},
            "DistributionId": {"Ref": distribution_id},
            "DistributionPaths": ["/*"],
            "Prune": True,
            "SourceObjectKeys": Match.array_with([Match.string_like_regexp(r"\.zip$")]),
        },
    )
    (deployment,) = prod.resources("Custom::CDKBucketDeployment").values()
    assert len(deployment["Properties"]["SourceObjectKeys"]) == 2  # web/ and config.json
    markers = str(deployment["Properties"]["SourceMarkers"])
    assert "ApiRestApi" in markers  # config.json carries the deployed API URL


def test_deployment_handler_runs_with_kestrels_own_role(prod: Synth) -> None:
    deploy_role = logical_id_of(prod, "ConsoleDeployRole", "AWS::IAM::Role")
    handlers = [
        properties
        for properties in (r["Properties"] for r in prod.resources("AWS::Lambda::Function").values())
        if "ImageConfig" not in properties
    ]
    (handler,) = handlers
    assert handler["Role"] == {"Fn::GetAtt": [deploy_role, "Arn"]}


def test_custom_domain_uses_the_certificate_and_modern_tls(prod: Synth) -> None:
    (distribution,) = prod.resources("AWS::CloudFront::Distribution").values()
    config = distribution["Properties"]["DistributionConfig"]
    assert config["Aliases"] == ["kestrel.example.com"]
    assert config["ViewerCertificate"]["AcmCertificateArn"].startswith("arn:aws:acm:us-east-1:")
    assert config["ViewerCertificate"]["MinimumProtocolVersion"] == "TLSv1.2_2021"
    assert prod.template_json["Outputs"]["ConsoleUrl"]["Value"] == "https://kestrel.example.com/"


def test_has_content_ignores_hidden_files(tmp_path: Path) -> None:
    assert not has_content(tmp_path / "missing")
    assert not has_content(tmp_path)
    (tmp_path / ".gitkeep").write_text("")
    (tmp_path / ".cache").mkdir()
    (tmp_path / ".cache" / "x.js").write_text("")
    assert not has_content(tmp_path)
    (tmp_path / "assets").mkdir()
    (tmp_path / "assets" / "app.js").write_text("")
    assert has_content(tmp_path)
