"""The AWS API of the lab: a moto server in clh-ctl, where the CCM role records its ELBs.

Load balancers the lab creates in the AWS cloud are registered as ELBv2 network load balancers
with the tags the AWS cloud controller manager sets (``kubernetes.io/cluster/<id>: owned``,
``kubernetes.io/service-name: <ns>/<name>``), so tests and the collection query them with boto3
exactly as they would query AWS (``endpoint_url`` pointing at the lab).
"""

import json
import os
import subprocess
import sys
import time
import urllib.request

MOTO_PORT = 5000
ENDPOINT = "http://127.0.0.1:%d" % MOTO_PORT
REGION = "eu-central-1"


class AwsApi:
    def __init__(self, lab_dir):
        self.dir = lab_dir
        self.proc = None
        self.vpc = None
        self.subnet = None

    def start(self):
        """Run moto_server inside clh-ctl (the daemon's own network namespace)."""
        exe = os.path.join(os.path.dirname(sys.executable), "moto_server")
        log = open(os.path.join(self.dir, "moto.log"), "ab")  # pylint: disable=R1732
        self.proc = subprocess.Popen([exe, "-H", "127.0.0.1", "-p", str(MOTO_PORT)],
                                     stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        log.close()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(ENDPOINT + "/moto-api/", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        with open(os.path.join(self.dir, "aws.json"), "w", encoding="utf-8") as fh:
            json.dump({"endpoint_url": ENDPOINT, "region": REGION,
                       "aws_access_key_id": "lab", "aws_secret_access_key": "lab"}, fh)

    def _client(self, service):
        import boto3  # pylint: disable=import-outside-toplevel
        return boto3.client(service, endpoint_url=ENDPOINT, region_name=REGION,
                            aws_access_key_id="lab", aws_secret_access_key="lab")

    def create_lb(self, name, cluster_id, service):
        """An NLB with the CCM's tags; returns its ARN."""
        if self.subnet is None:
            ec2 = self._client("ec2")
            self.vpc = ec2.create_vpc(CidrBlock="172.31.0.0/16")["Vpc"]["VpcId"]
            self.subnet = ec2.create_subnet(VpcId=self.vpc, CidrBlock="172.31.0.0/20",
                                            AvailabilityZone=REGION + "a")["Subnet"]["SubnetId"]
        lb = self._client("elbv2").create_load_balancer(
            Name=name, Subnets=[self.subnet], Type="network", Scheme="internet-facing",
            Tags=[{"Key": "kubernetes.io/cluster/" + cluster_id, "Value": "owned"},
                  {"Key": "kubernetes.io/service-name", "Value": service}])
        return lb["LoadBalancers"][0]["LoadBalancerArn"]

    def delete_lb(self, arn):
        self._client("elbv2").delete_load_balancer(LoadBalancerArn=arn)

    # Route53: a hosted zone the migration changes through the API (amazon.aws.route53)
    def hosted_zone(self, zone):
        """The ID of public hosted zone ``zone`` (created when missing)."""
        r53 = self._client("route53")
        for found in r53.list_hosted_zones()["HostedZones"]:
            if found["Name"] == zone:
                return found["Id"]
        return r53.create_hosted_zone(Name=zone, CallerReference="cloudhop-lab-" + zone)[
            "HostedZone"]["Id"]

    def set_a(self, zone_id, name, addresses, ttl):
        self._client("route53").change_resource_record_sets(
            HostedZoneId=zone_id, ChangeBatch={"Changes": [{
                "Action": "UPSERT", "ResourceRecordSet": {
                    "Name": name, "Type": "A", "TTL": ttl,
                    "ResourceRecords": [{"Value": a} for a in addresses]}}]})

    def a_records(self, zone_id):
        """{name: (sorted addresses, ttl)} of the zone's A records."""
        out = {}
        sets = self._client("route53").list_resource_record_sets(HostedZoneId=zone_id)
        for rrset in sets["ResourceRecordSets"]:
            if rrset["Type"] == "A" and rrset.get("ResourceRecords"):
                out[rrset["Name"]] = (sorted(r["Value"] for r in rrset["ResourceRecords"]),
                                      int(rrset.get("TTL", 0)))
        return out

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=5)
