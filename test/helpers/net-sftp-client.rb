# Ruby's net-sftp over net-ssh (Debian's ruby-net-sftp), for test/sftp/ruby-net-sftp.test.ts.
# Usage: ruby net-sftp-client.rb PORT USER KEYFILE WORK
# WORK holds in.bin and a folder tree/; the script uploads both, reads them
# back into WORK/back.bin and WORK/tree-back/, and prints one JSON object of
# what each step returned.
require 'json'
require 'net/sftp'

port, user, key, work = ARGV

# The SFTP status code a step failed with, or 'done'.
def status_of
  yield
  'done'
rescue Net::SFTP::StatusException => e
  e.code
end

r = {}
Net::SFTP.start('127.0.0.1', user, port: port.to_i, keys: [key], keys_only: true, verify_host_key: :never,
                                   non_interactive: true, use_agent: false, logger: Logger.new(nil)) do |sftp|
  r['version'] = sftp.protocol.version
  r['kex'] = sftp.session.transport.algorithms.kex
  sftp.mkdir!('rb')
  sftp.upload!(File.join(work, 'in.bin'), 'rb/up.bin')
  sftp.upload!(File.join(work, 'tree'), 'rb/tree', mkdir: true)
  sftp.download!('rb/up.bin', File.join(work, 'back.bin'))
  sftp.download!('rb/tree', File.join(work, 'tree-back'), recursive: true)
  r['glob'] = sftp.dir.glob('rb/tree', '**/*').map(&:name).sort
  sftp.file.open('rb/lines.txt', 'w') { |f| f.puts('one'); f.print('two', "\n") }
  r['lines'] = sftp.file.open('rb/lines.txt', 'r') { |f| [f.gets, f.gets, f.gets] }
  sftp.rename!('rb/lines.txt', 'rb/renamed.txt')
  sftp.setstat!('rb/renamed.txt', permissions: 0o755, atime: 1_000_000_000, mtime: 1_000_000_000)
  a = sftp.stat!('rb/renamed.txt')
  r['stat'] = { 'size' => a.size, 'mtime' => a.mtime, 'permissions' => a.permissions.to_s(8), 'file' => a.file? }
  # As its documentation's example: the existing file, then the new link (OpenSSH's order).
  sftp.symlink!('renamed.txt', 'rb/link')
  r['readlink'] = sftp.readlink!('rb/link').name
  r['missing'] = status_of { sftp.stat!('rb/missing') }
  r['rmdirNotEmpty'] = status_of { sftp.rmdir!('rb') }
  r['entries'] = sftp.dir.entries('rb').map(&:name).sort
end
puts JSON.generate(r)
