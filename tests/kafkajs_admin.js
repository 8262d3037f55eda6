// KafkaJS's admin client against `kafkaproof serve` (tests/test_kafkajs.py): a third,
// independent client for the admin APIs. Prints one JSON object of what it saw.
const { Kafka, logLevel } = require("kafkajs");

async function main() {
  const kafka = new Kafka({ clientId: "kafkajs-admin", brokers: process.argv[2].split(","),
                            logLevel: logLevel.NOTHING, retry: { retries: 3 } });
  const admin = kafka.admin();
  const producer = kafka.producer();
  await admin.connect();
  await producer.connect();
  const out = {};
  out.cluster = (await admin.describeCluster()).brokers.map((b) => b.nodeId).sort();
  await admin.createTopics({ waitForLeaders: true, topics: [
    { topic: "js-configs", numPartitions: 1, replicationFactor: 1,
      configEntries: [{ name: "retention.ms", value: "123000" }] }] });
  await admin.alterConfigs({ validateOnly: false, resources: [
    { type: 2, name: "js-configs", configEntries: [{ name: "cleanup.policy", value: "compact" }] }] });
  const described = await admin.describeConfigs({ includeSynonyms: false, resources: [{ type: 2, name: "js-configs" }] });
  const entries = Object.fromEntries(described.resources[0].configEntries.map((e) => [e.configName, e.configValue]));
  out.configs = { "retention.ms": entries["retention.ms"], "cleanup.policy": entries["cleanup.policy"] };
  try {
    await admin.alterConfigs({ validateOnly: false, resources: [
      { type: 2, name: "js-configs", configEntries: [{ name: "no.such.config", value: "1" }] }] });
    out.badConfig = "accepted";
  } catch (e) {
    out.badConfig = e.type || e.name;
  }

  await admin.createTopics({ waitForLeaders: true, topics: [{ topic: "js-records", numPartitions: 1, replicationFactor: 1 }] });
  await producer.send({ topic: "js-records", messages: Array.from({ length: 6 }, (_, i) => ({ value: `v${i}` })) });
  await admin.fetchTopicMetadata({ topics: ["js-records"] }); // (KafkaJS finds leaders in its cached metadata)
  await admin.deleteTopicRecords({ topic: "js-records", partitions: [{ partition: 0, offset: "4" }] });
  out.lowAfterDelete = (await admin.fetchTopicOffsets("js-records"))[0].low;

  await admin.createTopics({ waitForLeaders: true, topics: [{ topic: "js-moving", numPartitions: 1, replicationFactor: 1 }] });
  const [meta] = (await admin.fetchTopicMetadata({ topics: ["js-moving"] })).topics;
  const from = meta.partitions[0].replicas;
  const to = out.cluster.filter((b) => !from.includes(b));
  await admin.alterPartitionReassignments({ topics: [{ topic: "js-moving", partitionAssignment: [{ partition: 0, replicas: to }] }] });
  for (let i = 0; i < 100; i++) {
    const [m] = (await admin.fetchTopicMetadata({ topics: ["js-moving"] })).topics;
    const ongoing = await admin.listPartitionReassignments({});
    if (JSON.stringify(m.partitions[0].replicas) === JSON.stringify(to) && ongoing.topics.length === 0) {
      out.moved = to;
      break;
    }
    await new Promise((r) => setTimeout(r, 100));
  }

  const consumer = kafka.consumer({ groupId: "js-group" });
  await consumer.connect();
  await consumer.subscribe({ topic: "js-records", fromBeginning: true });
  let seen = 0;
  await new Promise((resolve) => {
    consumer.run({ eachMessage: async () => { seen += 1; if (seen >= 2) resolve(); } });
  });
  await consumer.disconnect();
  out.consumed = seen;
  out.groupsBefore = (await admin.listGroups()).groups.map((g) => g.groupId).filter((g) => g === "js-group");
  await admin.deleteGroups(["js-group"]);
  out.groupsAfter = (await admin.listGroups()).groups.map((g) => g.groupId).filter((g) => g === "js-group");

  await producer.disconnect();
  await admin.disconnect();
  console.log(JSON.stringify(out));
}

main().catch((e) => { console.error(e); process.exit(1); });
