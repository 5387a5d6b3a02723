// Kestrel 2.x development configuration, in Kestrel's own Scala form. kestreld reads it
// as it is (kestreld -f config/kestrel-2.x/development.scala); config/development.conf is the
// same configuration as a kestreld key file. See docs/configuration.md for the mapping.
import com.twitter.conversions.storage._
import com.twitter.conversions.time._
import com.twitter.logging.config._
import com.twitter.ostrich.admin.config._
import net.lag.kestrel.config._

new KestrelConfig {
  listenAddress = "0.0.0.0"
  memcacheListenPort = 22133
  textListenPort = 2222
  thriftListenPort = 2229

  // relative to the directory the server is started from
  queuePath = "spool"

  clientTimeout = 30.seconds
  expirationTimerFrequency = 1.second
  maxOpenTransactions = 100

  // settings of every queue not listed below
  default.defaultJournalSize = 16.megabytes
  default.maxMemorySize = 128.megabytes
  default.maxJournalSize = 1.gigabyte

  admin.httpPort = 2223

  // ostrich's time series: kestreld serves its stats on the admin port instead (a warning)
  admin.statsNodes = new StatsConfig {
    reporters = new TimeSeriesCollectorConfig
  }

  queues = new QueueBuilder {
    // at most half an hour old, at most 1.5M items
    name = "weather_updates"
    maxAge = 1800.seconds
    maxItems = 1500000
  } :: new QueueBuilder {
    // memory only: the contents are lost when the server stops
    name = "transient_events"
    keepJournal = false
  } :: new QueueBuilder {
    // a delay queue: items move on to jobs_ready after 30 seconds
    name = "jobs_pending"
    expireToQueue = "jobs_ready"
    maxAge = 30.seconds
  } :: new QueueBuilder {
    // fsync before every acknowledgement
    name = "jobs_ready"
    syncJournal = 0.seconds
  } :: new QueueBuilder {
    name = "spam"
  } :: new QueueBuilder {
    name = "spam0"
  } :: new QueueBuilder {
    // stores nothing itself, only in its fanout children hello+NAME
    name = "hello"
    fanoutOnly = true
  } :: new QueueBuilder {
    // bounded: the oldest items go when it is full
    name = "small"
    maxSize = 128.megabytes
    maxMemorySize = 16.megabytes
    maxJournalSize = 128.megabytes
    discardOldWhenFull = true
  } :: new QueueBuilder {
    name = "slow"
    syncJournal = 10.milliseconds
  }

  aliases = new AliasBuilder {
    name = "wx_updates"
    destinationQueues = List("weather_updates")
  } :: new AliasBuilder {
    name = "spam_all"
    destinationQueues = List("spam", "spam0")
  }

  // no FileHandlerConfig: the log goes to stderr, where a developer sees it
  loggers = new LoggerConfig {
    level = Level.INFO
    handlers = new ConsoleHandlerConfig()
  }
}
