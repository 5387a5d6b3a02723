// Kestrel 2.x production configuration, in Kestrel's own Scala form. kestreld reads it
// as it is (kestreld -f config/kestrel-2.x/production.scala); config/production.conf is the
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

  queuePath = "/var/spool/kestrel"

  // idle clients stay connected
  clientTimeout = None

  expirationTimerFrequency = 1.second
  maxOpenTransactions = 100

  // settings of every queue not listed below
  default.defaultJournalSize = 16.megabytes
  default.maxMemorySize = 128.megabytes
  default.maxJournalSize = 1.gigabyte
  // fsync every 100ms; a write is acknowledged once an fsync covered it
  default.syncJournal = 100.milliseconds

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
  }

  loggers = new LoggerConfig {
    level = Level.INFO
    handlers = new FileHandlerConfig {
      filename = "/var/log/kestrel/kestrel.log"
      // reopened on SIGHUP, after logrotate moved it away
      roll = Policy.SigHup
    }
  }
}
