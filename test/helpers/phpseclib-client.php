<?php
// phpseclib 1.0 (Debian's php-seclib) against a gateway, for test/sftp/phpseclib.test.ts.
// Usage: php phpseclib-client.php PORT USER (password:PASSWORD | key:FILE) IN OUT
// Prints one JSON object of what each step returned; exits 2 if the login fails.
set_include_path('/usr/share/php');
require_once 'Net/SFTP.php';
require_once 'Crypt/RSA.php';

[, $port, $user, $credential, $in, $out] = $argv;
$sftp = new Net_SFTP('127.0.0.1', (int) $port, 30);
if (str_starts_with($credential, 'key:')) {
    $secret = new Crypt_RSA();
    $secret->loadKey(file_get_contents(substr($credential, 4)));
} else {
    $secret = substr($credential, strlen('password:'));
}
if (!@$sftp->login($user, $secret)) {
    fwrite(STDERR, "login failed: " . implode('; ', $sftp->getErrors()) . "\n");
    exit(2);
}
// Its stat cache would answer for the server after an upload.
$sftp->disableStatCache();
$negotiated = $sftp->getAlgorithmsNegotiated();
$r = ['kex' => $negotiated['kex'], 'hostKey' => $negotiated['hostkey']];
$r['mkdir'] = $sftp->mkdir('php/sub', -1, true);
$r['chdir'] = $sftp->chdir('php');
$r['pwd'] = $sftp->pwd();
$r['put'] = $sftp->put('up.bin', $in, NET_SFTP_LOCAL_FILE);
$r['size'] = $sftp->filesize('up.bin');
$r['get'] = $sftp->get('up.bin', $out);
$r['range'] = bin2hex($sftp->get('up.bin', false, 300000, 8));
$r['putString'] = $sftp->put('sub/note.txt', "hello\n");
$r['resume'] = $sftp->put('sub/note.txt', "world\n", NET_SFTP_STRING | NET_SFTP_RESUME);
$r['atOffset'] = $sftp->put('sub/note.txt', 'J', NET_SFTP_STRING, 0);
$r['note'] = $sftp->get('sub/note.txt');
$r['chmod'] = $sftp->chmod(0750, 'sub/note.txt');
$r['touch'] = $sftp->touch('sub/note.txt', 1000000000, 1000000000);
$stat = $sftp->stat('sub/note.txt');
$r['stat'] = ['size' => $stat['size'], 'mtime' => $stat['mtime'], 'permissions' => decoct($stat['permissions'] & 0777), 'type' => $stat['type']];
$r['rename'] = $sftp->rename('sub/note.txt', 'sub/renamed.txt');
$r['symlink'] = $sftp->symlink('renamed.txt', 'sub/link');
$r['readlink'] = $sftp->readlink('sub/link');
$list = $sftp->nlist('sub');
sort($list);
$r['nlist'] = $list;
$r['isDir'] = $sftp->is_dir('sub');
$r['getMissing'] = $sftp->get('missing.txt');
$r['missingError'] = $sftp->getLastSFTPError();
$r['rmdirNotEmpty'] = $sftp->rmdir('sub');
$r['deleteTree'] = $sftp->delete('sub', true);
$r['afterDelete'] = $sftp->file_exists('sub');
echo json_encode($r), "\n";
