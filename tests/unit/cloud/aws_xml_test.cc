// SPDX-License-Identifier: Apache-2.0
// The AWS XML parsers on the sample bodies of ../shared/cloud/API_SHAPES.md (copied verbatim;
// only the DescribeAvailabilityZones sample, cut short in the AWS docs, is closed here), on error
// bodies of every shape, and on bodies that must be refused: wrong or broken documents, missing
// fields, deep nesting, oversize bodies and DTDs. r53_change_batch is read back with tinyxml2.
#include "control/cloud/aws_xml.h"

#include <tinyxml2.h>

#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace tandem::ctl::cloud {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// Runs f, which must throw aws_xml_error, and returns its message.
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const aws_xml_error& e) {
    return e.what();
  }
  ADD_FAILURE() << "no aws_xml_error thrown";
  return {};
}

// ---- the samples of API_SHAPES.md ----

constexpr std::string_view replace_route_sample =
    R"(<ReplaceRouteResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
   <requestId>59dbff89-35bd-4eac-99ed-be587EXAMPLE</requestId>
   <return>true</return>
</ReplaceRouteResponse>)";

constexpr std::string_view describe_route_tables_sample =
    R"(<DescribeRouteTablesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
    <requestId>fe876446-c8c0-4f2d-a6df-ed506example</requestId>
    <routeTableSet>
        <item>
            <routeTableId>rtb-1122334455667788a</routeTableId>
            <vpcId>vpc-12345678912345678</vpcId>
            <ownerId>111122223333</ownerId>
            <routeSet>
                <item>
                    <destinationCidrBlock>10.0.1.0/32</destinationCidrBlock>
                    <gatewayId>igw-012345678901abcdef</gatewayId>
                    <state>active</state>
                    <origin>CreateRoute</origin>
                </item>
                <item>
                    <destinationCidrBlock>172.31.0.0/16</destinationCidrBlock>
                    <gatewayId>local</gatewayId>
                    <state>active</state>
                    <origin>CreateRouteTable</origin>
                </item>
                ...
            </routeSet>
            <associationSet>
                <item>
                    <routeTableAssociationId>rtbassoc-04ca27a6914a0b4fc</routeTableAssociationId>
                    <routeTableId>rtb-1122334455667788a</routeTableId>
                    <main>true</main>
                </item>
            </associationSet>
            <propagatingVgwSet/>
            <tagSet/>
        </item>
    </routeTableSet>
</DescribeRouteTablesResponse>)";

constexpr std::string_view associate_address_sample =
    R"(<AssociateAddressResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
   <requestId>59dbff89-35bd-4eac-99ed-be587EXAMPLE</requestId>
   <return>true</return>
   <associationId>eipassoc-fc5ca095</associationId>
</AssociateAddressResponse>)";

constexpr std::string_view disassociate_address_sample =
    R"(<DisassociateAddressResponse xmlns="http://ec2.amazonaws.com/doc/2013-10-15/">
   <requestId>59dbff89-35bd-4eac-99ed-be587EXAMPLE</requestId>
   <return>true</return>
</DisassociateAddressResponse>)";

constexpr std::string_view describe_addresses_sample =
    R"(<DescribeAddressesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
   <requestId>f7de5e98-491a-4c19-a92d-908d6EXAMPLE</requestId>
   <addressesSet>
     <item>
       <publicIp>203.0.113.41</publicIp>
       <allocationId>eipalloc-08229861</allocationId>
       <domain>vpc</domain>
       <instanceId>i-0598c7d356eba48d7</instanceId>
       <associationId>eipassoc-f0229899</associationId>
       <networkInterfaceId>eni-ef229886</networkInterfaceId>
       <networkInterfaceOwnerId>053230519467</networkInterfaceOwnerId>
       <privateIpAddress>10.0.0.228</privateIpAddress>
     </item>
   </addressesSet>
</DescribeAddressesResponse>)";

// The sample stops after <networkBorderGroup> with "..."; closed here.
constexpr std::string_view describe_zones_sample =
    R"(<DescribeAvailabilityZonesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
    <requestId>e23c5a54-a29c-43ee-8b55-0c13c26e9e01</requestId>
    <availabilityZoneInfo>
        <item>
            <groupName>us-west-2-zg-1</groupName>
            <optInStatus>opt-in-not-required</optInStatus>
            <zoneName>us-west-2a</zoneName>
            <zoneId>usw2-az1</zoneId>
            <zoneState>available</zoneState>
            <zoneType>availability-zone</zoneType>
            <regionName>us-west-2</regionName>
            <messageSet/>
            <networkBorderGroup>us-west-2</networkBorderGroup>
            ...
        </item>
    </availabilityZoneInfo>
</DescribeAvailabilityZonesResponse>)";

constexpr std::string_view ec2_error_sample = R"(<Response>
    <Errors>
         <Error>
           <Code>InvalidInstanceID.NotFound</Code>
           <Message>The instance ID 'i-1a2b3c4d' does not exist</Message>
         </Error>
    </Errors>
    <RequestID>ea966190-f9aa-478e-9ede-example</RequestID>
</Response>)";

constexpr std::string_view ec2_error_captured = R"(<?xml version="1.0" encoding="UTF-8"?>
<Response><Errors><Error><Code>InvalidRouteTableID.NotFound</Code>
<Message>The routeTable ID 'rtb-4FC866A0' does not exist</Message></Error></Errors>
<RequestID>fa8896b1-7b4b-444d-a54d-b38f9d4316f6</RequestID></Response>)";

constexpr std::string_view change_rrsets_syntax_sample = R"(<ChangeResourceRecordSetsResponse>
   <ChangeInfo>
      <Comment>string</Comment>
      <Id>string</Id>
      <Status>string</Status>
      <SubmittedAt>timestamp</SubmittedAt>
   </ChangeInfo>
</ChangeResourceRecordSetsResponse>)";

constexpr std::string_view get_change_sample = R"(<?xml version="1.0" encoding="UTF-8"?>
<GetChangeResponse xmlns="https://route53.amazonaws.com/doc/2013-04-01/">
   <ChangeInfo>
      <Id>C2682N5HXP0BZ4</Id>
      <Status>INSYNC</Status>
      <SubmittedAt>2017-03-10T01:36:41.958Z</SubmittedAt>
   </ChangeInfo>
</GetChangeResponse>)";

constexpr std::string_view list_rrsets_sample =
    R"(<ListResourceRecordSetsResponse xmlns="https://route53.amazonaws.com/doc/2013-04-01/">
    <ResourceRecordSets>
        <ResourceRecordSet>
            <Name>test.example.com.</Name>
            <Type>A</Type>
            <TTL>60</TTL>
            <ResourceRecords>
                <ResourceRecord>
                    <Value>10.0.0.1</Value>
                </ResourceRecord>
            </ResourceRecords>
        </ResourceRecordSet>
        ...
    </ResourceRecordSets>
    <IsTruncated>false</IsTruncated>
    <MaxItems>100</MaxItems>
</ListResourceRecordSetsResponse>)";

constexpr std::string_view r53_error_sample = R"(<?xml version="1.0"?>
<ErrorResponse xmlns="https://route53.amazonaws.com/doc/2013-04-01/"><Error><Type>Sender</Type>
<Code>PriorRequestNotComplete</Code><Message>The request was rejected because Route 53 was still processing a prior request.</Message></Error>
<RequestId>12d222a0-f3d9-11e4-a611-c321a3a00f9c</RequestId></ErrorResponse>)";

constexpr std::string_view r53_invalid_change_batch_error =
    R"(<ErrorResponse xmlns="https://route53.amazonaws.com/doc/2013-04-01/">
  <Error>
    <Type>Sender</Type>
      <Code>InvalidChangeBatch</Code>
      <Message>Tried to delete resource record set [name='_acme-challenge.example.com.', type='TXT', set-identifier='"5CiR…"'] but it was not found</Message>
  </Error>
  <RequestId>SOMEREQUESTID</RequestId>
</ErrorResponse>)";

constexpr std::string_view r53_invalid_change_batch_bare =
    R"(<InvalidChangeBatch xmlns="https://route53.amazonaws.com/doc/2013-04-01/"><Messages><Message>Tried to delete resource
record set noexist.example.com. type A,but it was not found</Message></Messages></InvalidChangeBatch>)";

// The body a real client sent (API_SHAPES.md §6), after the XML declaration we write.
constexpr std::string_view real_client_upsert =
    R"(<ChangeResourceRecordSetsRequest xmlns="https://route53.amazonaws.com/doc/2013-04-01/"><ChangeBatch><Changes><Change><Action>UPSERT</Action><ResourceRecordSet><Name>a.absent.example.com</Name><Type>A</Type><TTL>60</TTL><ResourceRecords><ResourceRecord><Value>192.0.2.1</Value></ResourceRecord></ResourceRecords></ResourceRecordSet></Change></Changes></ChangeBatch></ChangeResourceRecordSetsRequest>)";

// ---- EC2 acknowledgements ----

TEST(aws_xml_ack, replace_route_sample) {
  EXPECT_EQ(parse_ec2_ack(replace_route_sample), "59dbff89-35bd-4eac-99ed-be587EXAMPLE");
}

TEST(aws_xml_ack, disassociate_address_sample_with_older_namespace) {
  EXPECT_EQ(parse_ec2_ack(disassociate_address_sample), "59dbff89-35bd-4eac-99ed-be587EXAMPLE");
}

TEST(aws_xml_ack, return_false_is_refused) {
  const std::string msg = error_of([] {
    parse_ec2_ack(
        "<ReplaceRouteResponse><requestId>r1</requestId><return>false</return>"
        "</ReplaceRouteResponse>");
  });
  EXPECT_EQ(msg, "ReplaceRoute: return is \"false\"");
}

TEST(aws_xml_ack, missing_fields_are_named) {
  EXPECT_EQ(error_of([] {
              parse_ec2_ack("<ReplaceRouteResponse><return>true</return></ReplaceRouteResponse>");
            }),
            "ReplaceRoute: missing requestId");
  EXPECT_EQ(
      error_of([] {
        parse_ec2_ack("<ReplaceRouteResponse><requestId>r</requestId></ReplaceRouteResponse>");
      }),
      "ReplaceRoute: missing return");
  EXPECT_EQ(error_of([] {
              parse_ec2_ack(
                  "<ReplaceRouteResponse><requestId> </requestId><return>true</return>"
                  "</ReplaceRouteResponse>");
            }),
            "ReplaceRoute: empty requestId");
}

TEST(aws_xml_ack, error_and_foreign_roots_are_refused) {
  EXPECT_THAT(error_of([] { parse_ec2_ack(ec2_error_sample); }), HasSubstr("\"Response\""));
  EXPECT_THAT(error_of([] { parse_ec2_ack(r53_error_sample); }), HasSubstr("\"ErrorResponse\""));
  EXPECT_THAT(error_of([] { parse_ec2_ack("<html><body>hi</body></html>"); }),
              HasSubstr("not an action's response"));
}

// ---- DescribeRouteTables ----

TEST(aws_xml_route_tables, sample) {
  const ec2_route_tables r = parse_describe_route_tables(describe_route_tables_sample);
  EXPECT_EQ(r.request_id, "fe876446-c8c0-4f2d-a6df-ed506example");
  EXPECT_EQ(r.next_token, "");
  ASSERT_EQ(r.tables.size(), 1u);
  const ec2_route_table& t = r.tables[0];
  EXPECT_EQ(t.route_table_id, "rtb-1122334455667788a");
  EXPECT_EQ(t.vpc_id, "vpc-12345678912345678");
  ASSERT_EQ(t.routes.size(), 2u);
  EXPECT_EQ(t.routes[0].destination_cidr, "10.0.1.0/32");
  EXPECT_EQ(t.routes[0].gateway_id, "igw-012345678901abcdef");
  EXPECT_EQ(t.routes[0].state, "active");
  EXPECT_EQ(t.routes[0].network_interface_id, "");
  EXPECT_EQ(t.routes[0].instance_id, "");
  EXPECT_EQ(t.routes[1].destination_cidr, "172.31.0.0/16");
  EXPECT_EQ(t.routes[1].gateway_id, "local");
}

// An ENI route (as ReplaceRoute leaves it), a blackhole, an IPv6 and a prefix-list route (no
// destinationCidrBlock), a namespace prefix and a second page.
TEST(aws_xml_route_tables, eni_routes_ipv6_prefixes_and_next_token) {
  const ec2_route_tables r = parse_describe_route_tables(
      R"(<ec2:DescribeRouteTablesResponse xmlns:ec2="http://ec2.amazonaws.com/doc/2016-11-15/">
  <ec2:requestId>req-2</ec2:requestId>
  <ec2:routeTableSet>
    <ec2:item>
      <ec2:routeTableId>rtb-a</ec2:routeTableId>
      <ec2:vpcId>vpc-1</ec2:vpcId>
      <ec2:routeSet>
        <ec2:item>
          <ec2:destinationCidrBlock>10.9.0.7/32</ec2:destinationCidrBlock>
          <ec2:instanceId>i-0598c7d356eba48d7</ec2:instanceId>
          <ec2:instanceOwnerId>111122223333</ec2:instanceOwnerId>
          <ec2:networkInterfaceId>eni-0a1b2c</ec2:networkInterfaceId>
          <ec2:origin>CreateRoute</ec2:origin>
          <ec2:state>active</ec2:state>
        </ec2:item>
        <ec2:item>
          <ec2:destinationCidrBlock>10.9.0.8/32</ec2:destinationCidrBlock>
          <ec2:networkInterfaceId>eni-gone</ec2:networkInterfaceId>
          <ec2:state>blackhole</ec2:state>
        </ec2:item>
        <ec2:item>
          <ec2:destinationIpv6CidrBlock>2001:db8::/64</ec2:destinationIpv6CidrBlock>
          <ec2:gatewayId>local</ec2:gatewayId>
          <ec2:state>active</ec2:state>
        </ec2:item>
        <ec2:item>
          <ec2:destinationPrefixListId>pl-63a5400a</ec2:destinationPrefixListId>
          <ec2:gatewayId>vpce-1</ec2:gatewayId>
          <ec2:state>active</ec2:state>
        </ec2:item>
      </ec2:routeSet>
    </ec2:item>
    <ec2:item>
      <ec2:routeTableId>rtb-b</ec2:routeTableId>
      <ec2:routeSet/>
    </ec2:item>
  </ec2:routeTableSet>
  <ec2:nextToken>  AAEAAb6T/page2==
  </ec2:nextToken>
</ec2:DescribeRouteTablesResponse>)");
  EXPECT_EQ(r.request_id, "req-2");
  EXPECT_EQ(r.next_token, "AAEAAb6T/page2==");
  ASSERT_EQ(r.tables.size(), 2u);
  ASSERT_EQ(r.tables[0].routes.size(), 4u);
  const ec2_route& eni = r.tables[0].routes[0];
  EXPECT_EQ(eni.destination_cidr, "10.9.0.7/32");
  EXPECT_EQ(eni.network_interface_id, "eni-0a1b2c");
  EXPECT_EQ(eni.instance_id, "i-0598c7d356eba48d7");
  EXPECT_EQ(eni.gateway_id, "");
  EXPECT_EQ(r.tables[0].routes[1].state, "blackhole");
  EXPECT_EQ(r.tables[0].routes[2].destination_cidr, "");
  EXPECT_EQ(r.tables[0].routes[2].gateway_id, "local");
  EXPECT_EQ(r.tables[0].routes[3].destination_cidr, "");
  EXPECT_EQ(r.tables[1].route_table_id, "rtb-b");
  EXPECT_EQ(r.tables[1].vpc_id, "");
  EXPECT_THAT(r.tables[1].routes, IsEmpty());
}

TEST(aws_xml_route_tables, empty_result) {
  const ec2_route_tables r = parse_describe_route_tables(
      "<DescribeRouteTablesResponse><requestId>x</requestId><routeTableSet/>"
      "</DescribeRouteTablesResponse>");
  EXPECT_THAT(r.tables, IsEmpty());
}

TEST(aws_xml_route_tables, missing_fields) {
  EXPECT_EQ(error_of([] {
              parse_describe_route_tables(
                  "<DescribeRouteTablesResponse><routeTableSet/></DescribeRouteTablesResponse>");
            }),
            "DescribeRouteTables: missing requestId");
  EXPECT_EQ(error_of([] {
              parse_describe_route_tables(
                  "<DescribeRouteTablesResponse><requestId>x</requestId>"
                  "</DescribeRouteTablesResponse>");
            }),
            "DescribeRouteTables: missing routeTableSet");
  EXPECT_EQ(error_of([] {
              parse_describe_route_tables(
                  "<DescribeRouteTablesResponse><requestId>x</requestId><routeTableSet><item>"
                  "<vpcId>v</vpcId><routeSet/></item></routeTableSet>"
                  "</DescribeRouteTablesResponse>");
            }),
            "DescribeRouteTables: missing routeTableId");
  EXPECT_EQ(error_of([] {
              parse_describe_route_tables(
                  "<DescribeRouteTablesResponse><requestId>x</requestId><routeTableSet><item>"
                  "<routeTableId>rtb</routeTableId></item></routeTableSet>"
                  "</DescribeRouteTablesResponse>");
            }),
            "DescribeRouteTables: missing routeSet");
}

// Only direct children count: a <state> further down (here in an unknown element) is not the
// route's state, nor is the association's routeTableId the table's.
TEST(aws_xml_route_tables, only_direct_children) {
  EXPECT_EQ(error_of([] {
              parse_describe_route_tables(
                  "<DescribeRouteTablesResponse><requestId>x</requestId><routeTableSet><item>"
                  "<routeTableId>rtb</routeTableId><routeSet><item>"
                  "<destinationCidrBlock>10.0.0.1/32</destinationCidrBlock>"
                  "<futureField><state>active</state></futureField>"
                  "</item></routeSet></item></routeTableSet></DescribeRouteTablesResponse>");
            }),
            "DescribeRouteTables: missing state");
  EXPECT_EQ(error_of([] {
              parse_describe_route_tables(
                  "<DescribeRouteTablesResponse><requestId>x</requestId><routeTableSet><item>"
                  "<associationSet><item><routeTableId>rtb</routeTableId></item></associationSet>"
                  "<routeSet/></item></routeTableSet></DescribeRouteTablesResponse>");
            }),
            "DescribeRouteTables: missing routeTableId");
}

TEST(aws_xml_route_tables, wrong_root_and_broken_documents) {
  EXPECT_EQ(error_of([] {
              parse_describe_route_tables(
                  "<DescribeVpcsResponse><requestId>x</requestId></DescribeVpcsResponse>");
            }),
            "DescribeRouteTables: root element is \"DescribeVpcsResponse\", not "
            "\"DescribeRouteTablesResponse\"");
  EXPECT_THAT(error_of([] { parse_describe_route_tables(ec2_error_sample); }),
              HasSubstr("root element is \"Response\""));
  const std::string_view truncated =
      describe_route_tables_sample.substr(0, describe_route_tables_sample.size() / 2);
  EXPECT_THAT(error_of([&] { parse_describe_route_tables(truncated); }),
              HasSubstr("DescribeRouteTables: not XML: XML_ERROR_"));
  EXPECT_THAT(error_of([] { parse_describe_route_tables(""); }),
              HasSubstr("not XML: XML_ERROR_EMPTY_DOCUMENT"));
  EXPECT_THAT(error_of([] { parse_describe_route_tables(R"({"RouteTables":[]})"); }),
              HasSubstr("not XML"));
  EXPECT_THAT(
      error_of([] {
        parse_describe_route_tables("<DescribeRouteTablesResponse/><DescribeRouteTablesResponse/>");
      }),
      HasSubstr("more than one root element"));
  EXPECT_THAT(error_of([] { parse_describe_route_tables("junk<DescribeRouteTablesResponse/>"); }),
              HasSubstr("text outside the root element"));
  // A "leaf" holding elements is a shape we do not know.
  EXPECT_EQ(error_of([] {
              parse_describe_route_tables(
                  "<DescribeRouteTablesResponse><requestId><a/></requestId><routeTableSet/>"
                  "</DescribeRouteTablesResponse>");
            }),
            "DescribeRouteTables: requestId holds elements");
}

// ---- DescribeVpcs ----

TEST(aws_xml_vpcs, primary_and_associated_blocks_in_document_order) {
  const ec2_vpcs r = parse_describe_vpcs(R"(<?xml version="1.0" encoding="UTF-8"?>
<DescribeVpcsResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
  <requestId>7a62c49f-347e-4fc4-9331-6e8eEXAMPLE</requestId>
  <vpcSet>
    <item>
      <vpcId>vpc-0a60eb65b4EXAMPLE</vpcId>
      <ownerId>111122223333</ownerId>
      <state>available</state>
      <cidrBlock>10.0.0.0/16</cidrBlock>
      <cidrBlockAssociationSet>
        <item>
          <cidrBlock>10.0.0.0/16</cidrBlock>
          <associationId>vpc-cidr-assoc-1</associationId>
          <cidrBlockState><state>associated</state></cidrBlockState>
        </item>
        <item>
          <cidrBlock>10.1.0.0/16</cidrBlock>
          <associationId>vpc-cidr-assoc-2</associationId>
          <cidrBlockState><state>disassociated</state></cidrBlockState>
        </item>
        <item>
          <cidrBlock>100.64.0.0/16</cidrBlock>
          <associationId>vpc-cidr-assoc-3</associationId>
          <cidrBlockState><state>associated</state></cidrBlockState>
        </item>
      </cidrBlockAssociationSet>
      <ipv6CidrBlockAssociationSet>
        <item>
          <ipv6CidrBlock>2001:db8:1234:1a00::/56</ipv6CidrBlock>
          <ipv6CidrBlockState><state>associated</state></ipv6CidrBlockState>
        </item>
      </ipv6CidrBlockAssociationSet>
      <isDefault>false</isDefault>
    </item>
    <item>
      <vpcId>vpc-2</vpcId>
      <state>pending</state>
      <cidrBlock>172.31.0.0/16</cidrBlock>
    </item>
  </vpcSet>
</DescribeVpcsResponse>)");
  EXPECT_EQ(r.request_id, "7a62c49f-347e-4fc4-9331-6e8eEXAMPLE");
  ASSERT_EQ(r.vpcs.size(), 2u);
  EXPECT_EQ(r.vpcs[0].vpc_id, "vpc-0a60eb65b4EXAMPLE");
  EXPECT_EQ(r.vpcs[0].state, "available");
  EXPECT_THAT(r.vpcs[0].cidr_blocks, ElementsAre("10.0.0.0/16", "100.64.0.0/16"));
  EXPECT_EQ(r.vpcs[1].state, "pending");
  EXPECT_THAT(r.vpcs[1].cidr_blocks, ElementsAre("172.31.0.0/16"));
}

TEST(aws_xml_vpcs, missing_fields_and_wrong_root) {
  EXPECT_EQ(error_of([] {
              parse_describe_vpcs(
                  "<DescribeVpcsResponse><requestId>x</requestId><vpcSet><item>"
                  "<cidrBlock>10.0.0.0/16</cidrBlock></item></vpcSet>"
                  "</DescribeVpcsResponse>");
            }),
            "DescribeVpcs: missing vpcId");
  EXPECT_EQ(error_of([] {
              parse_describe_vpcs(
                  "<DescribeVpcsResponse><requestId>x</requestId>"
                  "</DescribeVpcsResponse>");
            }),
            "DescribeVpcs: missing vpcSet");
  EXPECT_THAT(error_of([] { parse_describe_vpcs(describe_route_tables_sample); }),
              HasSubstr("root element is \"DescribeRouteTablesResponse\""));
}

// ---- Elastic IP ----

TEST(aws_xml_eip, associate_address_sample) {
  const ec2_association r = parse_associate_address(associate_address_sample);
  EXPECT_EQ(r.request_id, "59dbff89-35bd-4eac-99ed-be587EXAMPLE");
  EXPECT_EQ(r.association_id, "eipassoc-fc5ca095");
}

TEST(aws_xml_eip, associate_address_refusals) {
  EXPECT_EQ(error_of([] {
              parse_associate_address(
                  "<AssociateAddressResponse><requestId>r</requestId>"
                  "<return>false</return></AssociateAddressResponse>");
            }),
            "AssociateAddress: return is \"false\"");
  EXPECT_EQ(error_of([] {
              parse_associate_address(
                  "<AssociateAddressResponse><requestId>r</requestId>"
                  "<return>true</return></AssociateAddressResponse>");
            }),
            "AssociateAddress: missing associationId");
  EXPECT_THAT(error_of([] { parse_associate_address(replace_route_sample); }),
              HasSubstr("root element is \"ReplaceRouteResponse\""));
}

TEST(aws_xml_eip, describe_addresses_sample) {
  const ec2_addresses r = parse_describe_addresses(describe_addresses_sample);
  EXPECT_EQ(r.request_id, "f7de5e98-491a-4c19-a92d-908d6EXAMPLE");
  ASSERT_EQ(r.addresses.size(), 1u);
  const ec2_address& a = r.addresses[0];
  EXPECT_EQ(a.public_ip, "203.0.113.41");
  EXPECT_EQ(a.allocation_id, "eipalloc-08229861");
  EXPECT_EQ(a.association_id, "eipassoc-f0229899");
  EXPECT_EQ(a.network_interface_id, "eni-ef229886");
  EXPECT_EQ(a.instance_id, "i-0598c7d356eba48d7");
  EXPECT_EQ(a.private_ip, "10.0.0.228");
}

TEST(aws_xml_eip, unassociated_address) {
  const ec2_addresses r = parse_describe_addresses(
      R"(<DescribeAddressesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
   <requestId>r</requestId>
   <addressesSet>
     <item>
       <publicIp>198.51.100.7</publicIp>
       <allocationId>eipalloc-1</allocationId>
       <domain>vpc</domain>
       <tagSet/>
       <publicIpv4Pool>amazon</publicIpv4Pool>
       <networkBorderGroup>us-east-1</networkBorderGroup>
     </item>
   </addressesSet>
</DescribeAddressesResponse>)");
  ASSERT_EQ(r.addresses.size(), 1u);
  EXPECT_EQ(r.addresses[0].public_ip, "198.51.100.7");
  EXPECT_EQ(r.addresses[0].allocation_id, "eipalloc-1");
  EXPECT_EQ(r.addresses[0].association_id, "");
  EXPECT_EQ(r.addresses[0].network_interface_id, "");
  EXPECT_EQ(r.addresses[0].instance_id, "");
  EXPECT_EQ(r.addresses[0].private_ip, "");
}

TEST(aws_xml_eip, describe_addresses_missing_fields) {
  EXPECT_EQ(error_of([] {
              parse_describe_addresses(
                  "<DescribeAddressesResponse><requestId>r</requestId>"
                  "<addressesSet><item><allocationId>a</allocationId></item>"
                  "</addressesSet></DescribeAddressesResponse>");
            }),
            "DescribeAddresses: missing publicIp");
  EXPECT_EQ(error_of([] {
              parse_describe_addresses(
                  "<DescribeAddressesResponse><requestId>r</requestId>"
                  "</DescribeAddressesResponse>");
            }),
            "DescribeAddresses: missing addressesSet");
}

// ---- DescribeAvailabilityZones ----

TEST(aws_xml_zones, sample) {
  const ec2_zones r = parse_describe_availability_zones(describe_zones_sample);
  EXPECT_EQ(r.request_id, "e23c5a54-a29c-43ee-8b55-0c13c26e9e01");
  ASSERT_EQ(r.zones.size(), 1u);
  EXPECT_EQ(r.zones[0].zone_name, "us-west-2a");
  EXPECT_EQ(r.zones[0].zone_id, "usw2-az1");
  EXPECT_EQ(r.zones[0].state, "available");
  EXPECT_THAT(r.zones[0].messages, IsEmpty());
}

TEST(aws_xml_zones, the_sample_as_printed_is_cut_short) {
  const std::string_view cut = describe_zones_sample.substr(0, describe_zones_sample.find("..."));
  EXPECT_THAT(error_of([&] { parse_describe_availability_zones(cut); }), HasSubstr("not XML"));
}

TEST(aws_xml_zones, impaired_zone_with_messages) {
  const ec2_zones r = parse_describe_availability_zones(
      R"(<DescribeAvailabilityZonesResponse>
  <requestId>r</requestId>
  <availabilityZoneInfo>
    <item>
      <zoneName>us-west-2b</zoneName>
      <zoneState>impaired</zoneState>
      <messageSet>
        <item><message>Elevated API error rates</message></item>
        <item><message>
          Recovering
        </message></item>
      </messageSet>
      <parentZone><zoneState>available</zoneState></parentZone>
    </item>
  </availabilityZoneInfo>
</DescribeAvailabilityZonesResponse>)");
  ASSERT_EQ(r.zones.size(), 1u);
  EXPECT_EQ(r.zones[0].state, "impaired");
  EXPECT_EQ(r.zones[0].zone_id, "");
  EXPECT_THAT(r.zones[0].messages, ElementsAre("Elevated API error rates", "Recovering"));
}

TEST(aws_xml_zones, state_only_from_the_zone_itself) {
  EXPECT_EQ(error_of([] {
              parse_describe_availability_zones(
                  "<DescribeAvailabilityZonesResponse><requestId>r</requestId>"
                  "<availabilityZoneInfo><item><zoneName>z</zoneName>"
                  "<messageSet><item><zoneState>available</zoneState></item></messageSet>"
                  "<state>available</state>"
                  "</item></availabilityZoneInfo></DescribeAvailabilityZonesResponse>");
            }),
            "DescribeAvailabilityZones: missing zoneState");
  EXPECT_EQ(error_of([] {
              parse_describe_availability_zones(
                  "<DescribeAvailabilityZonesResponse><requestId>r</requestId>"
                  "<availabilityZoneInfo><item><zoneState>available</zoneState></item>"
                  "</availabilityZoneInfo></DescribeAvailabilityZonesResponse>");
            }),
            "DescribeAvailabilityZones: missing zoneName");
}

// ---- error bodies ----

TEST(aws_xml_error_body, ec2_documented_example) {
  const auto e = parse_aws_error(ec2_error_sample);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->code, "InvalidInstanceID.NotFound");
  EXPECT_EQ(e->message, "The instance ID 'i-1a2b3c4d' does not exist");
  EXPECT_EQ(e->request_id, "ea966190-f9aa-478e-9ede-example");
}

TEST(aws_xml_error_body, ec2_captured_route_table_not_found) {
  const auto e = parse_aws_error(ec2_error_captured);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->code, "InvalidRouteTableID.NotFound");
  EXPECT_EQ(e->message, "The routeTable ID 'rtb-4FC866A0' does not exist");
  EXPECT_EQ(e->request_id, "fa8896b1-7b4b-444d-a54d-b38f9d4316f6");
}

TEST(aws_xml_error_body, route53_prior_request_not_complete) {
  const auto e = parse_aws_error(r53_error_sample);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->code, "PriorRequestNotComplete");
  EXPECT_EQ(e->message,
            "The request was rejected because Route 53 was still processing a prior request.");
  EXPECT_EQ(e->request_id, "12d222a0-f3d9-11e4-a611-c321a3a00f9c");
}

TEST(aws_xml_error_body, route53_invalid_change_batch_as_error_response) {
  const auto e = parse_aws_error(r53_invalid_change_batch_error);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->code, "InvalidChangeBatch");
  EXPECT_EQ(e->message,
            "Tried to delete resource record set [name='_acme-challenge.example.com.', "
            "type='TXT', set-identifier='\"5CiR…\"'] but it was not found");
  EXPECT_EQ(e->request_id, "SOMEREQUESTID");
}

TEST(aws_xml_error_body, route53_invalid_change_batch_bare) {
  const auto e = parse_aws_error(r53_invalid_change_batch_bare);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->code, "InvalidChangeBatch");
  EXPECT_EQ(
      e->message,
      "Tried to delete resource\nrecord set noexist.example.com. type A,but it was not found");
  EXPECT_EQ(e->request_id, "");
}

TEST(aws_xml_error_body, invalid_change_batch_messages_are_joined) {
  const auto e = parse_aws_error(
      "<InvalidChangeBatch><Messages><Message>first</Message><Message> </Message>"
      "<Message>second</Message></Messages><RequestId>rq</RequestId></InvalidChangeBatch>");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->message, "first; second");
  EXPECT_EQ(e->request_id, "rq");
}

TEST(aws_xml_error_body, sts_style_and_throttling) {
  const auto e = parse_aws_error(
      "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error><Type>Sender"
      "</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error>"
      "<RequestId>r-9</RequestId></ErrorResponse>");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->code, "Throttling");
  EXPECT_EQ(e->message, "Rate exceeded");
  EXPECT_EQ(e->request_id, "r-9");
}

TEST(aws_xml_error_body, code_without_message) {
  const auto e = parse_aws_error(
      "<Response><Errors><Error><Code>RequestLimitExceeded</Code></Error></Errors></Response>");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->code, "RequestLimitExceeded");
  EXPECT_EQ(e->message, "");
  EXPECT_EQ(e->request_id, "");
}

TEST(aws_xml_error_body, anything_else_is_nullopt) {
  // IMDS and proxies answer with HTML; a strict one is well-formed XML, most are not.
  EXPECT_FALSE(
      parse_aws_error("<html><head><title>401 - Unauthorized</title></head><body>"
                      "<h1>401 - Unauthorized</h1></body></html>"));
  EXPECT_FALSE(
      parse_aws_error("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
                      "<title>502 Bad Gateway</title></head><body><hr></body></html>"));
  EXPECT_FALSE(parse_aws_error(""));
  EXPECT_FALSE(parse_aws_error("Request limit exceeded."));
  EXPECT_FALSE(parse_aws_error(R"({"message":"nope"})"));
  EXPECT_FALSE(parse_aws_error(replace_route_sample));
  EXPECT_FALSE(parse_aws_error(describe_route_tables_sample));
  EXPECT_FALSE(parse_aws_error(ec2_error_sample.substr(0, 60)));
  EXPECT_FALSE(parse_aws_error("<Response><RequestID>r</RequestID></Response>"));
  EXPECT_FALSE(
      parse_aws_error("<Response><Errors><Error><Message>m</Message></Error></Errors>"
                      "</Response>"));
  EXPECT_FALSE(
      parse_aws_error("<ErrorResponse><Error><Code><b>x</b></Code></Error>"
                      "</ErrorResponse>"));
}

// ---- Route 53 ----

TEST(aws_xml_r53, change_info_syntax_sample) {
  const r53_change_info r = parse_r53_change_info(change_rrsets_syntax_sample);
  EXPECT_EQ(r.id, "string");
  EXPECT_EQ(r.status, "string");
}

TEST(aws_xml_r53, change_info_strips_the_change_prefix) {
  const r53_change_info r = parse_r53_change_info(
      R"(<?xml version="1.0" encoding="UTF-8"?>
<ChangeResourceRecordSetsResponse xmlns="https://route53.amazonaws.com/doc/2013-04-01/">
   <ChangeInfo>
      <Id>/change/C2682N5HXP0BZ4</Id>
      <Status>PENDING</Status>
      <SubmittedAt>2017-03-10T01:36:41.958Z</SubmittedAt>
      <Comment>tandem</Comment>
   </ChangeInfo>
</ChangeResourceRecordSetsResponse>)");
  EXPECT_EQ(r.id, "C2682N5HXP0BZ4");
  EXPECT_EQ(r.status, "PENDING");
}

TEST(aws_xml_r53, get_change_sample) {
  const r53_change_info r = parse_r53_change_info(get_change_sample);
  EXPECT_EQ(r.id, "C2682N5HXP0BZ4");
  EXPECT_EQ(r.status, "INSYNC");
}

TEST(aws_xml_r53, change_info_refusals) {
  // The id goes into the GetChange URL path.
  EXPECT_THAT(error_of([] {
                parse_r53_change_info(
                    "<GetChangeResponse><ChangeInfo><Id>/change/../hostedzone"
                    "</Id><Status>INSYNC</Status></ChangeInfo>"
                    "</GetChangeResponse>");
              }),
              HasSubstr("GetChange: Id \"../hostedzone\" is not a change id"));
  EXPECT_THAT(error_of([] {
                parse_r53_change_info(
                    "<GetChangeResponse><ChangeInfo><Id>/change/</Id>"
                    "<Status>INSYNC</Status></ChangeInfo></GetChangeResponse>");
              }),
              HasSubstr("is not a change id"));
  EXPECT_EQ(error_of([] {
              parse_r53_change_info(
                  "<GetChangeResponse><ChangeInfo><Id>C1</Id></ChangeInfo>"
                  "</GetChangeResponse>");
            }),
            "GetChange: missing Status");
  EXPECT_EQ(error_of([] { parse_r53_change_info("<GetChangeResponse/>"); }),
            "GetChange: missing ChangeInfo");
  EXPECT_THAT(error_of([] { parse_r53_change_info(list_rrsets_sample); }),
              HasSubstr("root element is \"ListResourceRecordSetsResponse\""));
  EXPECT_THAT(error_of([] { parse_r53_change_info(r53_error_sample); }),
              HasSubstr("root element is \"ErrorResponse\""));
}

TEST(aws_xml_r53, list_sample) {
  const r53_record_sets r = parse_r53_list_record_sets(list_rrsets_sample);
  EXPECT_FALSE(r.truncated);
  EXPECT_EQ(r.next_name, "");
  ASSERT_EQ(r.sets.size(), 1u);
  EXPECT_EQ(r.sets[0].name, "test.example.com.");
  EXPECT_EQ(r.sets[0].type, "A");
  EXPECT_EQ(r.sets[0].ttl, 60);
  EXPECT_THAT(r.sets[0].values, ElementsAre("10.0.0.1"));
  EXPECT_EQ(r.sets[0].set_identifier, "");
}

TEST(aws_xml_r53, list_truncated_alias_weighted_and_escaped_names) {
  const r53_record_sets r = parse_r53_list_record_sets(
      R"(<ListResourceRecordSetsResponse xmlns="https://route53.amazonaws.com/doc/2013-04-01/">
  <ResourceRecordSets>
    <ResourceRecordSet>
      <Name>\052.example.com.</Name>
      <Type>A</Type>
      <AliasTarget>
        <HostedZoneId>Z2FDTNDATAQYW2</HostedZoneId>
        <DNSName>d111111abcdef8.cloudfront.net.</DNSName>
        <EvaluateTargetHealth>false</EvaluateTargetHealth>
      </AliasTarget>
    </ResourceRecordSet>
    <ResourceRecordSet>
      <Name>vip.example.com.</Name>
      <Type>A</Type>
      <SetIdentifier>node-a</SetIdentifier>
      <Weight>10</Weight>
      <TTL>10</TTL>
      <ResourceRecords>
        <ResourceRecord><Value>192.0.2.1</Value></ResourceRecord>
        <ResourceRecord><Value>192.0.2.2</Value></ResourceRecord>
      </ResourceRecords>
    </ResourceRecordSet>
  </ResourceRecordSets>
  <IsTruncated>true</IsTruncated>
  <NextRecordName>vip.example.com.</NextRecordName>
  <NextRecordType>AAAA</NextRecordType>
  <MaxItems>2</MaxItems>
</ListResourceRecordSetsResponse>)");
  EXPECT_TRUE(r.truncated);
  EXPECT_EQ(r.next_name, "vip.example.com.");
  EXPECT_EQ(r.next_type, "AAAA");
  ASSERT_EQ(r.sets.size(), 2u);
  EXPECT_EQ(r.sets[0].name, "\\052.example.com.");
  EXPECT_FALSE(r.sets[0].ttl);
  EXPECT_THAT(r.sets[0].values, IsEmpty());
  EXPECT_EQ(r.sets[1].set_identifier, "node-a");
  EXPECT_EQ(r.sets[1].ttl, 10);
  EXPECT_THAT(r.sets[1].values, ElementsAre("192.0.2.1", "192.0.2.2"));
}

TEST(aws_xml_r53, list_refusals) {
  const auto list = [](std::string_view sets, std::string_view tail) {
    return "<ListResourceRecordSetsResponse><ResourceRecordSets>" + std::string(sets) +
           "</ResourceRecordSets>" + std::string(tail) + "</ListResourceRecordSetsResponse>";
  };
  const std::string a = "<ResourceRecordSet><Name>a.</Name><Type>A</Type>";
  EXPECT_EQ(error_of([&] { parse_r53_list_record_sets(list("", "")); }),
            "ListResourceRecordSets: missing IsTruncated");
  EXPECT_EQ(
      error_of([&] { parse_r53_list_record_sets(list("", "<IsTruncated>maybe</IsTruncated>")); }),
      "ListResourceRecordSets: IsTruncated is \"maybe\"");
  EXPECT_EQ(
      error_of([&] { parse_r53_list_record_sets(list("", "<IsTruncated>true</IsTruncated>")); }),
      "ListResourceRecordSets: missing NextRecordName");
  EXPECT_EQ(error_of([&] {
              parse_r53_list_record_sets(
                  list("", "<IsTruncated>true</IsTruncated><NextRecordName>b.</NextRecordName>"));
            }),
            "ListResourceRecordSets: missing NextRecordType");
  for (const char* ttl : {"6O", "-1", "+5", "", "99999999999999999999", "1 2"}) {
    EXPECT_THAT(error_of([&] {
                  parse_r53_list_record_sets(list(a + "<TTL>" + ttl + "</TTL></ResourceRecordSet>",
                                                  "<IsTruncated>false</IsTruncated>"));
                }),
                HasSubstr("is not a number"))
        << ttl;
  }
  EXPECT_EQ(error_of([&] {
              parse_r53_list_record_sets(
                  list("<ResourceRecordSet><Type>A</Type>"
                       "</ResourceRecordSet>",
                       "<IsTruncated>false</IsTruncated>"));
            }),
            "ListResourceRecordSets: missing Name");
  EXPECT_EQ(
      error_of([&] {
        parse_r53_list_record_sets(list(a + "<ResourceRecords><ResourceRecord/></ResourceRecords>"
                                            "</ResourceRecordSet>",
                                        "<IsTruncated>false</IsTruncated>"));
      }),
      "ListResourceRecordSets: missing Value");
  EXPECT_EQ(error_of([] {
              parse_r53_list_record_sets(
                  "<ListResourceRecordSetsResponse><IsTruncated>false</IsTruncated>"
                  "</ListResourceRecordSetsResponse>");
            }),
            "ListResourceRecordSets: missing ResourceRecordSets");
}

// ---- documents that must not be read as they claim ----

TEST(aws_xml_hostile, deep_nesting_is_refused_without_blowing_the_stack) {
  std::string deep = "<DescribeRouteTablesResponse>";
  for (int i = 0; i < 200000; ++i)
    deep += "<a>";
  EXPECT_THAT(error_of([&] { parse_describe_route_tables(deep); }), HasSubstr("not XML"));
  for (int i = 0; i < 200000; ++i)
    deep += "</a>";
  deep += "</DescribeRouteTablesResponse>";
  EXPECT_THAT(error_of([&] { parse_describe_route_tables(deep); }),
              HasSubstr("XML_ELEMENT_DEPTH_EXCEEDED"));
  EXPECT_FALSE(parse_aws_error(deep));
}

TEST(aws_xml_hostile, oversize_body) {
  std::string big = "<Response><Errors><Error><Code>X</Code><Message>";
  big.append(size_t{8} << 20, 'x');
  big += "</Message></Error></Errors></Response>";
  EXPECT_EQ(error_of([&] { parse_ec2_ack(big); }), "EC2 ack: body larger than 8 MiB");
  EXPECT_FALSE(parse_aws_error(big));
}

TEST(aws_xml_hostile, nul_byte) {
  using namespace std::string_literals;
  const std::string body =
      "<ReplaceRouteResponse><requestId>r</requestId><return>true</return></ReplaceRouteResponse>"
      "\0<junk"s;
  EXPECT_EQ(error_of([&] { parse_ec2_ack(body); }), "EC2 ack: not XML: NUL byte");
}

// An external entity must be neither fetched nor expanded: a DOCTYPE is refused outright, and an
// entity reference without one stays the literal text it is.
TEST(aws_xml_hostile, dtd_and_external_entities) {
  const std::string xxe =
      R"(<?xml version="1.0"?><!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/hostname">]>)"
      "<ReplaceRouteResponse><requestId>&xxe;</requestId><return>true</return>"
      "</ReplaceRouteResponse>";
  EXPECT_EQ(error_of([&] { parse_ec2_ack(xxe); }), "EC2 ack: a DOCTYPE is not accepted");
  const std::string laughs =
      R"(<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;">]>)"
      "<ErrorResponse><Error><Code>&lol2;</Code></Error></ErrorResponse>";
  EXPECT_FALSE(parse_aws_error(laughs));
  const std::string external_dtd =
      R"(<!DOCTYPE Response SYSTEM "http://203.0.113.9/evil.dtd">)"
      "<Response><Errors><Error><Code>X</Code></Error></Errors></Response>";
  EXPECT_FALSE(parse_aws_error(external_dtd));

  EXPECT_EQ(parse_ec2_ack("<ReplaceRouteResponse><requestId>&xxe;</requestId><return>true"
                          "</return></ReplaceRouteResponse>"),
            "&xxe;");
}

TEST(aws_xml_hostile, entities_cdata_and_comments) {
  EXPECT_EQ(parse_ec2_ack("<ReplaceRouteResponse><requestId> a&amp;b&lt;&#65;&#x42;<!-- c -->"
                          "<![CDATA[<c>]]> </requestId><return>true</return>"
                          "</ReplaceRouteResponse>"),
            "a&b<AB<c>");
}

TEST(aws_xml_hostile, error_messages_quote_safely) {
  const std::string msg = error_of([] {
    parse_describe_vpcs(
        "<DescribeVpcsResponse><requestId>r</requestId></DescribeVpcsResponse>"
        "<!-- x -->");
  });
  EXPECT_EQ(msg, "DescribeVpcs: missing vpcSet");
  const std::string long_root = "<" + std::string(300, 'X') + "/>";
  const std::string m2 = error_of([&] { parse_describe_vpcs(long_root); });
  EXPECT_LT(m2.size(), 200u);
  EXPECT_THAT(m2, HasSubstr("...\""));
}

// ---- r53_change_batch ----

// Reads a change batch back with tinyxml2, independently of the code under test.
struct read_back {
  std::string action, name, type, set_identifier, comment;
  bool has_ttl = false, has_comment = false, has_set_identifier = false;
  std::string ttl;
  std::vector<std::string> values;
};

read_back parse_batch(const std::string& body) {
  tinyxml2::XMLDocument doc;
  EXPECT_EQ(doc.Parse(body.data(), body.size()), tinyxml2::XML_SUCCESS) << body;
  read_back r;
  const tinyxml2::XMLElement* root = doc.RootElement();
  if (root == nullptr) return r;
  EXPECT_STREQ(root->Name(), "ChangeResourceRecordSetsRequest");
  EXPECT_STREQ(root->Attribute("xmlns"), "https://route53.amazonaws.com/doc/2013-04-01/");
  const auto text = [](const tinyxml2::XMLElement* e) {
    return e != nullptr && e->GetText() != nullptr ? std::string(e->GetText()) : std::string();
  };
  const auto* batch = root->FirstChildElement("ChangeBatch");
  if (batch == nullptr) return r;
  r.has_comment = batch->FirstChildElement("Comment") != nullptr;
  r.comment = text(batch->FirstChildElement("Comment"));
  const auto* change = batch->FirstChildElement("Changes")->FirstChildElement("Change");
  r.action = text(change->FirstChildElement("Action"));
  const auto* set = change->FirstChildElement("ResourceRecordSet");
  r.name = text(set->FirstChildElement("Name"));
  r.type = text(set->FirstChildElement("Type"));
  r.has_set_identifier = set->FirstChildElement("SetIdentifier") != nullptr;
  r.set_identifier = text(set->FirstChildElement("SetIdentifier"));
  r.has_ttl = set->FirstChildElement("TTL") != nullptr;
  r.ttl = text(set->FirstChildElement("TTL"));
  for (const auto* rr =
           set->FirstChildElement("ResourceRecords")->FirstChildElement("ResourceRecord");
       rr != nullptr; rr = rr->NextSiblingElement("ResourceRecord")) {
    r.values.push_back(text(rr->FirstChildElement("Value")));
  }
  return r;
}

TEST(aws_xml_change_batch, equals_a_real_clients_body) {
  r53_record_set s;
  s.name = "a.absent.example.com";
  s.type = "A";
  s.ttl = 60;
  s.values = {"192.0.2.1"};
  EXPECT_EQ(
      r53_change_batch("UPSERT", s),
      std::string(R"(<?xml version="1.0" encoding="UTF-8"?>)") + std::string(real_client_upsert));
}

TEST(aws_xml_change_batch, round_trip_with_escapes) {
  r53_record_set s;
  s.name = "\\052.vip.example.com.";
  s.type = "TXT";
  s.ttl = 0;
  s.values = {R"("a&b" "<c>")", "'quoted' & more >"};
  s.set_identifier = "node<1>&'2'";
  const std::string body = r53_change_batch("DELETE", s, R"(moved by "tandem" & <co>)");
  EXPECT_THAT(body, HasSubstr("<Value>&quot;a&amp;b&quot; &quot;&lt;c&gt;&quot;</Value>"));
  EXPECT_THAT(body, HasSubstr("<SetIdentifier>node&lt;1&gt;&amp;&apos;2&apos;</SetIdentifier>"));
  const read_back r = parse_batch(body);
  EXPECT_EQ(r.action, "DELETE");
  EXPECT_EQ(r.name, s.name);
  EXPECT_EQ(r.type, "TXT");
  EXPECT_TRUE(r.has_ttl);
  EXPECT_EQ(r.ttl, "0");
  EXPECT_EQ(r.set_identifier, s.set_identifier);
  EXPECT_EQ(r.comment, R"(moved by "tandem" & <co>)");
  EXPECT_EQ(r.values, s.values);
  // SetIdentifier comes before TTL in Route 53's schema.
  EXPECT_LT(body.find("<SetIdentifier>"), body.find("<TTL>"));
}

TEST(aws_xml_change_batch, optional_parts_left_out) {
  r53_record_set s;
  s.name = "vip.example.com.";
  s.type = "AAAA";
  s.values = {"2001:db8::1"};
  const std::string body = r53_change_batch("CREATE", s);
  const read_back r = parse_batch(body);
  EXPECT_FALSE(r.has_ttl);
  EXPECT_FALSE(r.has_set_identifier);
  EXPECT_FALSE(r.has_comment);
  EXPECT_EQ(r.action, "CREATE");
  EXPECT_THAT(r.values, ElementsAre("2001:db8::1"));
}

TEST(aws_xml_change_batch, refusals) {
  r53_record_set s;
  s.name = "vip.example.com.";
  s.type = "A";
  s.values = {"192.0.2.1"};
  EXPECT_EQ(error_of([&] { r53_change_batch("upsert", s); }),
            "ChangeResourceRecordSets: action \"upsert\" is not CREATE, DELETE or UPSERT");
  r53_record_set bad = s;
  bad.values = {};
  EXPECT_EQ(error_of([&] { r53_change_batch("UPSERT", bad); }),
            "ChangeResourceRecordSets: no Value");
  bad = s;
  bad.values = {"192.0.2.1", " "};
  EXPECT_EQ(error_of([&] { r53_change_batch("UPSERT", bad); }),
            "ChangeResourceRecordSets: empty Value");
  bad = s;
  bad.name = "";
  EXPECT_EQ(error_of([&] { r53_change_batch("UPSERT", bad); }),
            "ChangeResourceRecordSets: empty Name");
  bad = s;
  bad.name = "vip\n.example.com.";
  EXPECT_EQ(error_of([&] { r53_change_batch("UPSERT", bad); }),
            "ChangeResourceRecordSets: Name has a byte outside printable ASCII");
  bad = s;
  bad.values = {"caf\xc3\xa9"};
  EXPECT_EQ(error_of([&] { r53_change_batch("UPSERT", bad); }),
            "ChangeResourceRecordSets: Value has a byte outside printable ASCII");
  EXPECT_EQ(error_of([&] { r53_change_batch("UPSERT", s, "tab\there"); }),
            "ChangeResourceRecordSets: Comment has a byte outside printable ASCII");
  bad = s;
  bad.ttl = -1;
  EXPECT_EQ(error_of([&] { r53_change_batch("UPSERT", bad); }),
            "ChangeResourceRecordSets: TTL -1 is outside 0..2147483647");
}

}  // namespace
}  // namespace tandem::ctl::cloud

namespace tandem::ctl::cloud {
namespace {

TEST(aws_xml_sns, publish_gives_the_message_id_and_request_id) {
  const sns_publish_result r = parse_sns_publish(
      R"(<PublishResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/">
  <PublishResult>
    <MessageId>94f20ce6-13c5-43a0-9a9e-ca52d816e90b</MessageId>
  </PublishResult>
  <ResponseMetadata>
    <RequestId>f187a3c1-376f-11df-8963-01868b7c937a</RequestId>
  </ResponseMetadata>
</PublishResponse>)");
  EXPECT_EQ(r.message_id, "94f20ce6-13c5-43a0-9a9e-ca52d816e90b");
  EXPECT_EQ(r.request_id, "f187a3c1-376f-11df-8963-01868b7c937a");
  EXPECT_THROW((void)parse_sns_publish("<PublishResponse><PublishResult/></PublishResponse>"),
               aws_xml_error);
  EXPECT_THROW((void)parse_sns_publish("<ErrorResponse><Error><Code>NotFound</Code></Error>"
                                       "</ErrorResponse>"),
               aws_xml_error);
  EXPECT_THROW((void)parse_sns_publish("<html>proxy</html>"), aws_xml_error);
}

}  // namespace
}  // namespace tandem::ctl::cloud
